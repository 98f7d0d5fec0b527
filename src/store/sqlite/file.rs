//! The database file: opened with WAL and a busy timeout, and kept owner-only (0600) whatever
//! the umask, its -wal/-shm/-journal companions included.

use super::*;

pub(super) fn open_blocking(path: &str) -> Result<Connection, StoreError> {
    let op = backend("open");
    let mut conn = if path == ":memory:" {
        Connection::open_in_memory()
    } else {
        owner_only(path)?;
        Connection::open(path)
    }
    .map_err(&op)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&op)?;
    // WAL lets readers run alongside a writer; `:memory:` answers "memory" and stays so.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(&op)?;
    // With WAL, NORMAL loses at most the last commits on power loss, never integrity.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&op)?;
    migrations::apply(&mut conn)?;
    Ok(conn)
}

/// The database holds key hashes and every key's usage: owner read/write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Makes `path` owner-only before SQLite opens it, whatever the process umask: a missing
/// file is created here with mode 0600 (SQLite would create it 0644 & !umask), and SQLite's
/// unix VFS gives the `-wal`, `-shm` and `-journal` files it creates the database file's
/// mode. An existing database (or leftover `-wal`/`-shm`) readable by others is tightened
/// to 0600 with one warning. `file:` URIs are left to SQLite.
#[cfg(unix)]
pub(super) fn owner_only(path: &str) -> Result<(), StoreError> {
    use std::fs::{OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    if path.starts_with("file:") {
        return Ok(());
    }
    let failed = |what: String, err: std::io::Error| StoreError::Backend {
        op: "open",
        source: format!("{what}: {err}").into(),
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        // The umask may have taken bits off `mode` (never added any); fchmod is exact.
        Ok(file) => {
            return file
                .set_permissions(Permissions::from_mode(FILE_MODE))
                .map_err(|e| failed(format!("cannot set the mode of {path}"), e));
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(failed(format!("cannot create {path}"), err)),
    }
    let mut tightened = Vec::new();
    for file in [
        path.to_owned(),
        format!("{path}-wal"),
        format!("{path}-shm"),
        format!("{path}-journal"),
    ] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        // Not fatal (e.g. a file owned by another user): SQLite may still open it, and
        // the operator is told.
        match std::fs::set_permissions(&file, Permissions::from_mode(FILE_MODE)) {
            Ok(()) => tightened.push(format!("{file} (was {mode:04o})")),
            Err(err) => tracing::warn!(
                file = %file,
                mode = %format!("{mode:04o}"),
                error = %err,
                "store file is readable by others and cannot be made 0600"
            ),
        }
    }
    if !tightened.is_empty() {
        tracing::warn!(
            files = %tightened.join(", "),
            "store files were readable by others; tightened to 0600"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn owner_only(_path: &str) -> Result<(), StoreError> {
    Ok(())
}
