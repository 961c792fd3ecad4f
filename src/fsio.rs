//! Writing folders without losing anything: overlap checks, atomic writes, a writer lock,
//! and cell paths from untrusted manifests.
//!
//! The promises (README, "Reliability"):
//! - a command never writes into a folder it also reads from (`merge --out S0 S0 S1`,
//!   `baseline save R R`): paths are compared after resolving `..` and symlinks, and by
//!   file identity (device and inode) where both exist;
//! - files are written to a temporary name in the same folder and renamed into place, and
//!   whole folders (merge, baseline) are built beside their destination and renamed, so an
//!   interrupted command leaves the old content or the new, never a truncated mix;
//! - one writer per run folder: `.dropscope.lock` holds the writer's process id; a lock whose
//!   process is gone is stale and taken over;
//! - a cell folder named in a manifest must stay inside its run folder.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::InputError;

/// The lock file a writer keeps in the folder it writes.
pub const LOCK_FILE: &str = ".dropscope.lock";

/// `path` made absolute, with `.`/`..` resolved and symlinks followed as far as the path
/// exists (the part that does not exist yet is appended as written).
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut rest = Vec::new();
    let mut head = abs.as_path();
    loop {
        if let Ok(c) = head.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (head.parent(), head.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                head = parent;
            }
            _ => return abs,
        }
    }
}

/// True when one folder is the other or lies inside it (after [`resolve`]), or when both
/// exist and are the same file.
pub fn overlaps(a: &Path, b: &Path) -> bool {
    let (ra, rb) = (resolve(a), resolve(b));
    ra.starts_with(&rb) || rb.starts_with(&ra) || same_file(a, b)
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Refuses `dest` when it overlaps any of `sources` (exit 2 before anything is written).
pub fn refuse_overlap(dest: &Path, flag: &str, sources: &[&Path]) -> Result<(), InputError> {
    for s in sources {
        if overlaps(dest, s) {
            return Err(InputError::new(
                dest,
                format!(
                    "is (or contains, or lies inside) the input {}: writing there would destroy \
                     what is being read; choose another folder",
                    s.display()
                ),
            )
            .field(flag));
        }
    }
    Ok(())
}

/// A temporary name beside `path`, unique to this process.
fn temp_beside(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes `bytes` to `path` through a temporary file renamed into place, so a reader (or a
/// kill) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InputError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| InputError::io(parent, &e))?;
    }
    let tmp = temp_beside(path, "tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(InputError::io(&tmp, &e));
    }
    std::fs::rename(&tmp, path).map_err(|e| InputError::io(path, &e))
}

/// Copies a file through a temporary name (see [`write_atomic`]).
pub fn copy_atomic(from: &Path, to: &Path) -> Result<(), InputError> {
    let bytes = std::fs::read(from).map_err(|e| InputError::io(from, &e))?;
    write_atomic(to, &bytes)
}

/// A folder built beside its destination and renamed into place when complete.
pub struct StagedDir {
    pub dest: PathBuf,
    pub staging: PathBuf,
}

impl StagedDir {
    /// Starts a new staging folder for `dest` (removing a leftover of this process's id).
    pub fn new(dest: &Path) -> Result<Self, InputError> {
        let staging = temp_beside(dest, "staging");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| InputError::io(&staging, &e))?;
        Ok(StagedDir {
            dest: dest.to_path_buf(),
            staging,
        })
    }

    /// Moves the staged folder to its destination. An existing destination (which the
    /// caller has allowed to be replaced) is moved aside first and removed only after the
    /// new one is in place.
    pub fn commit(self) -> Result<(), InputError> {
        let old = temp_beside(&self.dest, "old");
        let had_old = self.dest.exists();
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(&self.dest, &old).map_err(|e| InputError::io(&self.dest, &e))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.dest) {
            if had_old {
                let _ = std::fs::rename(&old, &self.dest);
            }
            return Err(InputError::io(&self.dest, &e));
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        // Left over only when the command failed before commit: nothing of it is wanted.
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// True when `dir` has no entries other than a lock file.
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut it| it.all(|e| e.is_ok_and(|e| e.file_name() == LOCK_FILE)))
}

/// One writer per folder: holds `DIR/.dropscope.lock` (the process id) until dropped.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// The process id in `dir`'s lock file when that process is still running.
pub fn live_lock_owner(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (pid != std::process::id() && process_alive(pid)).then_some(pid)
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, InputError> {
        let path = dir.join(LOCK_FILE);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(pid) = live_lock_owner(dir) {
                        return Err(InputError::new(
                            dir,
                            format!(
                                "is being written by process {pid} (lock file {}); wait for it \
                                 to finish, or remove the lock file if that process is not dropscope",
                                path.display()
                            ),
                        ));
                    }
                    // Stale: the writer is gone (killed). Take it over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(InputError::io(&path, &e)),
            }
        }
        Err(InputError::new(&path, "could not take the lock"))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `rel` (a cell folder from a manifest) joined to `run`, if it is a plain relative path
/// that cannot leave the run folder: no root, no drive prefix, no `..`.
pub fn inside(run: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let plain = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    plain.then(|| run.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dropscope-fsio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_folder_overlaps_itself_through_dotdot_and_symlinks() {
        let d = tmp("overlap");
        std::fs::create_dir_all(d.join("a0")).unwrap();
        std::fs::create_dir_all(d.join("a1")).unwrap();
        assert!(overlaps(&d.join("a0"), &d.join("a0/../a0")));
        assert!(overlaps(&d.join("a0"), &d.join("a0/sub/new")));
        assert!(overlaps(&d, &d.join("a0")));
        assert!(!overlaps(&d.join("a0"), &d.join("a1")));
        assert!(!overlaps(&d.join("a0"), &d.join("a00")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("a0"), d.join("link")).unwrap();
            assert!(overlaps(&d.join("link"), &d.join("a0")));
        }
        let err =
            refuse_overlap(&d.join("a0"), "--out", &[&d.join("a1"), &d.join("./a0")]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("--out"));
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let d = tmp("atomic");
        let p = d.join("sub/f.txt");
        write_atomic(&p, b"first version, long").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(d.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_staged_folder_replaces_its_destination_only_on_commit() {
        let d = tmp("staged");
        let dest = d.join("base");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("old.txt"), "old").unwrap();
        {
            let s = StagedDir::new(&dest).unwrap();
            std::fs::write(s.staging.join("new.txt"), "new").unwrap();
            // Dropped without commit: the destination is untouched.
        }
        assert!(dest.join("old.txt").is_file());
        let s = StagedDir::new(&dest).unwrap();
        std::fs::write(s.staging.join("new.txt"), "new").unwrap();
        s.commit().unwrap();
        assert!(dest.join("new.txt").is_file() && !dest.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_second_writer_is_stopped_and_a_stale_lock_taken_over() {
        let d = tmp("lock");
        let held = DirLock::acquire(&d).unwrap();
        // pid 1 is always alive: a live foreign owner.
        drop(held);
        std::fs::write(d.join(LOCK_FILE), "1\n").unwrap();
        let err = DirLock::acquire(&d).unwrap_err();
        assert!(err.message.contains("process 1"), "{err}");
        // A pid that cannot exist: stale.
        std::fs::write(d.join(LOCK_FILE), "4294967294\n").unwrap();
        let lock = DirLock::acquire(&d).unwrap();
        drop(lock);
        assert!(!d.join(LOCK_FILE).exists());
    }

    #[test]
    fn cell_folders_that_climb_out_or_are_absolute_are_refused() {
        let run = Path::new("/runs/r");
        assert_eq!(inside(run, "arm/seed-1"), Some(run.join("arm/seed-1")));
        assert_eq!(inside(run, "x/y/../../../victim"), None);
        assert_eq!(inside(run, "/etc"), None);
        assert_eq!(inside(run, ".."), None);
        assert_eq!(inside(run, ""), None);
    }
}
