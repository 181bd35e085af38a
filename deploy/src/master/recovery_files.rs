//! How the master touches the files of its recovery directory, which is hostile ground:
//! anything found there may have been put there by someone else.
//!
//! - the directory is created `0700`, and an existing one owned by another user, or that
//!   group or others may write, is refused ([`prepare_dir`]): whoever can write it can
//!   plant records, and a planted driver record makes a worker run its command;
//! - files are created `0600`, never through a symbolic link ([`create_private`]);
//! - a file is read only if it is a regular file owned by this user, opened without
//!   following a link and without blocking (a FIFO would block `open` for ever), checked
//!   again on the open descriptor, and read no further than a cap ([`read_regular_capped`]).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;

/// Mode of the directory when it is created: the master's user only.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file the master creates there.
pub(crate) const FILE_MODE: u32 = 0o600;

/// `open` flags for every file opened in the directory: a symbolic link is an error
/// (`ELOOP`) rather than followed, and a FIFO opens at once instead of waiting for a
/// writer (on a regular file `O_NONBLOCK` changes nothing).
const SAFE_OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// The user this process runs as, who must own the directory and its files.
pub(crate) fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Creates `dir` (mode `0700`; missing parents with the default mode) if it is missing, and
/// checks that it is safe to trust: a directory (a symbolic link to one is followed), owned
/// by this process's user, writable by no one else.
///
/// Returns a warning to log when the directory is safe but readable by group or others
/// (records hold application commands and environments).
///
/// # Errors
///
/// Why the directory cannot be used, in words for an operator (it is quoted after the
/// directory's name and setting).
pub(crate) fn prepare_dir(dir: &Path) -> Result<Option<String>, String> {
    match fs::metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(dir)?,
        Err(e) => return Err(format!("the directory cannot be inspected: {e}")),
    }
    let meta = fs::metadata(dir).map_err(|e| format!("the directory cannot be inspected: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".to_string());
    }
    let me = my_uid();
    if meta.uid() != me {
        return Err(format!(
            "the directory is owned by uid {}, not by the master's user (uid {me}); a directory another user \
             controls could hold forged records: chown it or choose another directory",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "the directory is writable by group or others (mode {mode:04o}); whoever can write it can plant \
             records that make workers run commands: run `chmod 700 {}`",
            dir.display()
        ));
    }
    if mode & 0o077 != 0 {
        return Ok(Some(format!(
            "Recovery directory {} is readable by group or others (mode {mode:04o}); its records \
             hold application commands and environments: run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(None)
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| format!("the directory cannot be created: {e}"))?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        // Another master sharing the directory created it first: checked like any other.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("the directory cannot be created: {e}")),
    }
}

/// Creates `path`, which must not exist (not even as a dangling link), mode `0600`, for
/// writing.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(path)
}

/// Opens (creating it `0600` if missing) the regular file at `path` for reading and
/// writing, without truncating it: the leader lock. A symbolic link, FIFO, socket or device
/// there is an error, and a file left looser than `0600` (by an older Ember) is tightened.
pub(crate) fn open_private_rw(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(path)
        .map_err(|e| explain_open_error(path, e))?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind(meta.file_type())
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// `ELOOP` from `O_NOFOLLOW` says "too many levels of symbolic links": say what it means.
fn explain_open_error(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link, which is not followed",
                path.display()
            ),
        )
    } else {
        e
    }
}

/// The whole content of the regular file at `path`, at most `cap` bytes.
///
/// # Errors
///
/// Why the file is skipped, in words for a log line that names it: not a regular file
/// (a link, FIFO, socket, device or directory), owned by another user, larger than `cap`,
/// or unreadable. Never blocks on a FIFO, never reads more than `cap + 1` bytes.
pub(crate) fn read_regular_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    // First the name, without following it, so that most strangers are never opened.
    let meta = fs::symlink_metadata(path).map_err(|e| format!("cannot inspect: {e}"))?;
    check_regular(&meta, cap)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(SAFE_OPEN_FLAGS)
        .open(path)
        .map_err(|e| format!("cannot open: {}", explain_open_error(path, e)))?;
    // Then the descriptor: the name may have been replaced between the two.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect: {e}"))?;
    check_regular(&meta, cap)?;
    let expected = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(expected);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!("grew past the {cap}-byte limit while being read"));
    }
    Ok(bytes)
}

fn check_regular(meta: &fs::Metadata, cap: u64) -> Result<(), String> {
    if !meta.file_type().is_file() {
        return Err(format!("{}, not a regular file", kind(meta.file_type())));
    }
    let me = my_uid();
    if meta.uid() != me {
        return Err(format!(
            "owned by uid {}, not by the master's user (uid {me})",
            meta.uid()
        ));
    }
    if meta.len() > cap {
        return Err(format!(
            "{} bytes, more than the {cap}-byte limit of a record",
            meta.len()
        ));
    }
    Ok(())
}

/// What a file that is not a regular file is, for a log line.
fn kind(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "something"
    }
}

/// Flushes a directory's entries (a rename or removal) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
