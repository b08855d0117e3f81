//! Content-addressed artifacts: a directory tree is stored once under
//! `artifacts/<id>/`, where `id` is the SHA-256 of its manifest (every
//! file's relative path, executable bit and content hash, sorted). Actions
//! receive a fresh copy of each input, so nothing they do changes a stored
//! artifact.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug)]
struct Entry {
    rel: String,
    path: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    File { exec: bool },
    Link(PathBuf),
    Dir,
}

fn walk(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = e.file_type()?;
            let path = e.path();
            if ft.is_symlink() {
                out.push(Entry {
                    rel,
                    kind: Kind::Link(std::fs::read_link(&path)?),
                    path,
                });
            } else if ft.is_dir() {
                out.push(Entry {
                    rel: rel.clone(),
                    path: path.clone(),
                    kind: Kind::Dir,
                });
                stack.push((path, rel));
            } else {
                #[cfg(unix)]
                let exec = {
                    use std::os::unix::fs::PermissionsExt;
                    e.metadata()?.permissions().mode() & 0o111 != 0
                };
                #[cfg(not(unix))]
                let exec = false;
                out.push(Entry {
                    rel,
                    path,
                    kind: Kind::File { exec },
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((hex(&h.finalize()), n))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Copies a tree (files, directories, symlinks, executable bits).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in walk(from)? {
        let dest = to.join(&e.rel);
        match e.kind {
            Kind::Dir => std::fs::create_dir_all(&dest)?,
            Kind::File { .. } => {
                std::fs::copy(&e.path, &dest)?;
            }
            Kind::Link(target) => {
                #[cfg(unix)]
                std::os::unix::fs::symlink(target, &dest)?;
                #[cfg(not(unix))]
                let _ = target;
            }
        }
    }
    Ok(())
}

impl ArtifactStore {
    pub fn new(state_dir: &Path) -> ArtifactStore {
        ArtifactStore {
            dir: state_dir.join("artifacts"),
        }
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path_of(id).is_dir()
    }

    /// Stores the tree at `src` (once per distinct content).
    pub fn ingest(&self, src: &Path) -> io::Result<StoredArtifact> {
        let entries = walk(src)?;
        let mut manifest = Sha256::new();
        let mut files = 0;
        let mut bytes = 0;
        for e in &entries {
            match &e.kind {
                Kind::Dir => manifest.update(format!("d {}\n", e.rel)),
                Kind::Link(t) => manifest.update(format!("l {} {}\n", e.rel, t.display())),
                Kind::File { exec } => {
                    let (h, n) = hash_file(&e.path)?;
                    files += 1;
                    bytes += n;
                    manifest.update(format!("f {} {} {h}\n", e.rel, u8::from(*exec)));
                }
            }
        }
        // 128 bits of the digest name the artifact.
        let id = hex(&manifest.finalize()[..16]);
        let dest = self.path_of(&id);
        if !dest.is_dir() {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self
                .dir
                .join(format!(".tmp-{}-{}", id, uuid::Uuid::new_v4().simple()));
            copy_tree(src, &tmp)?;
            if std::fs::rename(&tmp, &dest).is_err() {
                // Another writer stored the same content first.
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        Ok(StoredArtifact { id, files, bytes })
    }

    /// A fresh, writable copy of artifact `id` at `dest`.
    pub fn materialize(&self, id: &str, dest: &Path) -> io::Result<()> {
        let src = self.path_of(id);
        if !src.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("artifact {id} is missing from {}", self.dir.display()),
            ));
        }
        copy_tree(&src, dest)
    }
}
