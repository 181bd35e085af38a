//! A minimal RGB canvas and PNG writer for `scale --plot`: lines, dots and digits, written
//! as an uncompressed PNG (stored deflate blocks), with no dependency.
//!
//! Why not a plotting crate: the well-kept one (plotters) draws text only through a font,
//! either found on the system (font-kit: a system dependency) or shipped with the program,
//! and encodes PNG through the `image` crate, a large build on a 2-core CI machine; charts
//! of a few curves need none of that. Uncompressed, a 640x400 chart is 750 KiB.

use std::io::Write as _;
use std::path::Path;

use crate::error::BenchError;

/// An RGB colour.
pub(crate) type Rgb = [u8; 3];

/// A white canvas of `width` x `height` pixels.
pub(crate) struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// 3x5 glyphs of the characters tick labels use, one row a byte (bit 2 is the left column).
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        _ => return None,
    })
}

impl Canvas {
    /// A white canvas.
    pub(crate) fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    /// Colours one pixel; points off the canvas are ignored.
    pub(crate) fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let at = (y as usize * self.width + x as usize) * 3;
        self.pixels[at..at + 3].copy_from_slice(&color);
    }

    /// A filled square of side `2 * r + 1` around `(x, y)`.
    pub(crate) fn dot(&mut self, x: i64, y: i64, r: i64, color: Rgb) {
        for dy in -r..=r {
            for dx in -r..=r {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// A line `width` pixels thick (Bresenham, with a dot at each step).
    pub(crate) fn line(&mut self, from: (i64, i64), to: (i64, i64), width: i64, color: Rgb) {
        let (mut x, mut y) = from;
        let (dx, dy) = ((to.0 - x).abs(), -(to.1 - y).abs());
        let (sx, sy) = (if x < to.0 { 1 } else { -1 }, if y < to.1 { 1 } else { -1 });
        let mut err = dx + dy;
        let r = (width - 1) / 2;
        loop {
            self.dot(x, y, r, color);
            if (x, y) == to {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// `text` (digits, `.`, `-`; others leave a gap) at `scale` pixels a font pixel, its
    /// top-left corner at `(x, y)`.
    pub(crate) fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        for (i, c) in text.chars().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            let left = x + i as i64 * 4 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.set(
                                    left + col * scale + sx,
                                    y + row as i64 * scale + sy,
                                    color,
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The width `text` takes at `scale`.
    pub(crate) fn text_width(text: &str, scale: i64) -> i64 {
        text.chars().count() as i64 * 4 * scale
    }

    /// Writes the canvas to `path` as a PNG.
    pub(crate) fn save(&self, path: &Path) -> Result<(), BenchError> {
        let bytes = encode_png(self.width as u32, self.height as u32, &self.pixels);
        let mut file = std::fs::File::create(path)
            .map_err(|e| BenchError::io(format!("creating {}", path.display()), e))?;
        file.write_all(&bytes)
            .map_err(|e| BenchError::io(format!("writing {}", path.display()), e))
    }
}

/// An 8-bit RGB PNG of `rgb` (rows top to bottom, 3 bytes a pixel), uncompressed.
fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    // Each row starts with its filter type: 0, none.
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in rgb.chunks(row) {
        raw.push(0);
        raw.extend_from_slice(line);
    }
    let mut zlib = vec![0x78, 0x01];
    let mut blocks = raw.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        zlib.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        zlib.push(u8::from(last));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &zlib[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

/// CRC-32 (ISO 3309, as PNG chunks use), bit by bit: charts are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32 (RFC 1950), the zlib stream's checksum.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        // The IEND chunk's CRC, in every PNG; Adler-32's example from its Wikipedia page.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn a_png_has_its_signature_header_and_every_byte() {
        let mut canvas = Canvas::new(300, 300);
        canvas.line((0, 0), (299, 299), 3, [255, 0, 0]);
        canvas.text(10, 10, "12.5", 2, [0, 0, 0]);
        let png = encode_png(300, 300, &canvas.pixels);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        // 300 rows of 901 bytes take five stored blocks of at most 65,535 bytes each: the
        // image is all there, uncompressed.
        assert!(png.len() > 300 * 901);
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    }
}
