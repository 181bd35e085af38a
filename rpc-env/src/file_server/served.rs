//! What a file server serves, and the one function that decides whether a requested path
//! is one of those files. Everything else is refused: a path never added, `..` or any other
//! component that is not a plain name, and a symlink that leads out of an added directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The prefix of the paths of single added files (Spark's `/files/`).
pub(crate) const FILES: &str = "files";

/// The longest path a peer may ask for: longer ones are refused before any lookup.
const MAX_PATH_LEN: usize = 4096;

/// Why a path is not served or cannot be added. The texts are what a peer or a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Nothing was added under this path.
    NotServed(String),
    /// The path has a component that is not a plain name (`..`, `.`, an empty one).
    BadPath(String),
    /// The path leads, through a symlink, out of the directory it was served from.
    Escapes(String),
    /// What a path names is not a regular file (a directory, a device, gone).
    NotAFile(String),
    /// A name or base that cannot be served (empty, with a `/`, the reserved `files`).
    BadName(String),
    /// The name is already served from another path.
    Taken { name: String, path: PathBuf },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotServed(p) => write!(f, "No file is served at /{p}"),
            Refusal::BadPath(p) => write!(
                f,
                "Refused /{p}: a served path is made of plain names (no '..', '.' or empty parts)"
            ),
            Refusal::Escapes(p) => {
                write!(
                    f,
                    "Refused /{p}: it leads out of the directory it is served from"
                )
            }
            Refusal::NotAFile(p) => write!(f, "Refused /{p}: it is not a regular file"),
            Refusal::BadName(n) => write!(
                f,
                "Cannot serve under '{n}': a name is one non-empty path segment, not '{FILES}'"
            ),
            Refusal::Taken { name, path } => write!(
                f,
                "'{name}' is already served from {} (a name is served from one path)",
                path.display()
            ),
        }
    }
}

/// The files and directories one env serves, by the names in their paths.
#[derive(Debug, Default)]
pub(crate) struct Served {
    /// `files/<name>`: a single file, by its canonical path.
    files: BTreeMap<String, PathBuf>,
    /// `<base>/...`: the files under a directory, by its canonical path.
    dirs: BTreeMap<String, PathBuf>,
}

impl Served {
    /// Serves the regular file at `path` as `files/<its file name>`; returns that path.
    /// Adding the same file again is a no-op; another file of the same name is refused.
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<String, Refusal> {
        let canonical = regular_file(path)?;
        let name = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Refusal::BadName(path.display().to_string()))?
            .to_string();
        check_name(&name)?;
        match self.files.get(&name) {
            Some(known) if *known != canonical => {
                return Err(Refusal::Taken {
                    name,
                    path: known.clone(),
                })
            }
            _ => self.files.insert(name.clone(), canonical),
        };
        Ok(format!("{FILES}/{name}"))
    }

    /// Serves the files under the directory `path` as `<base>/<relative path>`; returns
    /// `<base>`.
    pub(crate) fn add_directory(&mut self, base: &str, path: &Path) -> Result<String, Refusal> {
        check_name(base)?;
        let canonical = std::fs::canonicalize(path)
            .map_err(|_| Refusal::NotAFile(path.display().to_string()))?;
        if !canonical.is_dir() {
            return Err(Refusal::NotAFile(path.display().to_string()));
        }
        match self.dirs.get(base) {
            Some(known) if *known != canonical => Err(Refusal::Taken {
                name: base.to_string(),
                path: known.clone(),
            }),
            _ => {
                self.dirs.insert(base.to_string(), canonical);
                Ok(base.to_string())
            }
        }
    }

    /// The file to open for the requested `path` (without its leading `/`), or why not.
    pub(crate) fn resolve(&self, path: &str) -> Result<PathBuf, Refusal> {
        if path.len() > MAX_PATH_LEN {
            return Err(Refusal::NotServed(truncated(path)));
        }
        let mut parts = path.split('/');
        let head = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        if rest.iter().any(|p| !is_plain(p)) || !is_plain(head) {
            return Err(Refusal::BadPath(path.to_string()));
        }
        if head == FILES {
            let [name] = rest.as_slice() else {
                return Err(Refusal::NotServed(path.to_string()));
            };
            let file = self
                .files
                .get(*name)
                .ok_or_else(|| Refusal::NotServed(path.to_string()))?;
            // Checked again: the file may have been replaced since it was added.
            return regular_file(file).map_err(|_| Refusal::NotAFile(path.to_string()));
        }
        let dir = self
            .dirs
            .get(head)
            .ok_or_else(|| Refusal::NotServed(path.to_string()))?;
        if rest.is_empty() {
            return Err(Refusal::NotAFile(path.to_string()));
        }
        let candidate: PathBuf = rest.iter().fold(dir.clone(), |p, part| p.join(part));
        // Symlinks resolved: what is opened must still be inside the directory.
        let real =
            std::fs::canonicalize(&candidate).map_err(|_| Refusal::NotServed(path.to_string()))?;
        if !real.starts_with(dir) {
            return Err(Refusal::Escapes(path.to_string()));
        }
        regular_file(&real).map_err(|_| Refusal::NotAFile(path.to_string()))
    }
}

/// Whether `part` is a plain file name: not empty, not `.` or `..`, no NUL.
fn is_plain(part: &str) -> bool {
    !part.is_empty()
        && !part.contains('\0')
        && matches!(
            Path::new(part).components().next(),
            Some(Component::Normal(_))
        )
        && Path::new(part).components().count() == 1
}

/// A name files can be served under: one plain segment, and not the reserved `files`.
fn check_name(name: &str) -> Result<(), Refusal> {
    if !is_plain(name) || name.contains('/') || name == FILES {
        return Err(Refusal::BadName(name.to_string()));
    }
    Ok(())
}

/// The canonical path of the regular file at `path`.
fn regular_file(path: &Path) -> Result<PathBuf, Refusal> {
    let canonical =
        std::fs::canonicalize(path).map_err(|_| Refusal::NotAFile(path.display().to_string()))?;
    if !canonical.is_file() {
        return Err(Refusal::NotAFile(path.display().to_string()));
    }
    Ok(canonical)
}

/// A hostile path's first characters, for an error that must stay short.
fn truncated(path: &str) -> String {
    let mut end = 64.min(path.len());
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory with `data/a.txt`, `data/sub/b.txt`, `secret.txt` beside `data`,
    /// and `data/out` a symlink to `secret.txt`.
    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("ember-served-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/a.txt"), "a").unwrap();
        std::fs::write(root.join("data/sub/b.txt"), "b").unwrap();
        std::fs::write(root.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(root.join("secret.txt"), root.join("data/out")).unwrap();
        std::os::unix::fs::symlink(root.join("data/sub/b.txt"), root.join("data/in")).unwrap();
        root
    }

    #[test]
    fn added_files_and_directories_are_served_and_nothing_else() {
        let root = tree("serve");
        let mut served = Served::default();
        assert_eq!(
            served.add_file(&root.join("secret.txt")),
            Ok("files/secret.txt".into())
        );
        assert_eq!(
            served.add_directory("data", &root.join("data")),
            Ok("data".into())
        );
        let real = |p: &str| std::fs::canonicalize(root.join(p)).unwrap();
        assert_eq!(served.resolve("files/secret.txt"), Ok(real("secret.txt")));
        assert_eq!(served.resolve("data/a.txt"), Ok(real("data/a.txt")));
        assert_eq!(served.resolve("data/sub/b.txt"), Ok(real("data/sub/b.txt")));
        // A symlink that stays inside the directory is followed.
        assert_eq!(served.resolve("data/in"), Ok(real("data/sub/b.txt")));

        let refused = |p: &str| served.resolve(p).unwrap_err();
        assert_eq!(
            refused("files/a.txt"),
            Refusal::NotServed("files/a.txt".into())
        );
        assert_eq!(
            refused("other/a.txt"),
            Refusal::NotServed("other/a.txt".into())
        );
        assert_eq!(
            refused("data/missing"),
            Refusal::NotServed("data/missing".into())
        );
        assert_eq!(
            refused("data/../secret.txt"),
            Refusal::BadPath("data/../secret.txt".into())
        );
        assert_eq!(
            refused("data/./a.txt"),
            Refusal::BadPath("data/./a.txt".into())
        );
        assert_eq!(
            refused("data//a.txt"),
            Refusal::BadPath("data//a.txt".into())
        );
        assert_eq!(
            refused("/etc/passwd"),
            Refusal::BadPath("/etc/passwd".into())
        );
        assert_eq!(refused("files/"), Refusal::BadPath("files/".into()));
        assert_eq!(refused("data/out"), Refusal::Escapes("data/out".into()));
        assert_eq!(refused("data/sub"), Refusal::NotAFile("data/sub".into()));
        assert_eq!(refused("data"), Refusal::NotAFile("data".into()));
        let long = "x".repeat(10_000);
        assert!(refused(&long).to_string().len() < 200, "a short error");

        // The file behind a served name is checked again on each request.
        std::fs::remove_file(root.join("secret.txt")).unwrap();
        assert_eq!(
            refused("files/secret.txt"),
            Refusal::NotAFile("files/secret.txt".into())
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn names_are_one_plain_segment_served_from_one_path() {
        let root = tree("names");
        let mut served = Served::default();
        for bad in ["", "files", "..", ".", "a/b"] {
            assert_eq!(
                served.add_directory(bad, &root.join("data")),
                Err(Refusal::BadName(bad.into())),
                "{bad:?}"
            );
        }
        assert!(matches!(
            served.add_directory("d", &root.join("data/a.txt")),
            Err(Refusal::NotAFile(_))
        ));
        assert!(matches!(
            served.add_file(&root.join("data")),
            Err(Refusal::NotAFile(_))
        ));
        served.add_file(&root.join("data/a.txt")).unwrap();
        assert_eq!(
            served.add_file(&root.join("data/a.txt")),
            Ok("files/a.txt".into()),
            "the same file again"
        );
        std::fs::write(root.join("a.txt"), "another").unwrap();
        assert!(matches!(
            served.add_file(&root.join("a.txt")),
            Err(Refusal::Taken { .. })
        ));
        served.add_directory("d", &root.join("data")).unwrap();
        assert!(matches!(
            served.add_directory("d", &root.join("data/sub")),
            Err(Refusal::Taken { .. })
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
