//! A small fixed pool of PostgreSQL connections for the reference target.
//!
//! At most [`Pool::size`] connections, opened on demand and kept. Each new
//! connection drops its privileges first (`SET ROLE convoy_app`, see
//! `migrations/0003_app_role.sql`), so no request ever runs as the role that
//! migrated. Prepared statements are cached per connection.
//!
//! A connection goes back to the pool when its guard drops, unless it has
//! closed. Work runs in `tokio_postgres` transactions, whose drop sends a
//! `ROLLBACK` ahead of anything the next user sends: a request cancelled
//! halfway (its client went away) cannot leave a transaction, or the
//! transaction-local tenant, to the next one.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Statement};

/// The role requests run as.
pub(crate) const APP_ROLE: &str = "convoy_app";

/// One connection and its prepared statements.
pub(crate) struct PgConn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    /// `sql` prepared on this connection, once.
    pub async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// Connections to one database.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<PgConn>>,
    permits: Semaphore,
    size: usize,
}

impl std::fmt::Debug for Pool {
    // The configuration holds the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).finish()
    }
}

impl Pool {
    /// A pool of at most `size` connections (at least one) made with
    /// `config`; none is opened yet.
    pub fn new(mut config: tokio_postgres::Config, size: usize) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let size = size.max(1);
        Self {
            config,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            size,
        }
    }

    /// Most connections open at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A connection, waiting for one to be free if all are in use.
    pub async fn get(&self) -> Result<Pooled<'_>, tokio_postgres::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => {
                    return Ok(Pooled {
                        conn: Some(conn),
                        pool: self,
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let conn = self.connect().await?;
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }

    /// Opens a connection as [`APP_ROLE`]; its I/O task runs on the current
    /// runtime.
    async fn connect(&self) -> Result<PgConn, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            // Errors surface on the client's next call.
            let _ = connection.await;
        });
        client
            .batch_execute(&format!("SET ROLE {APP_ROLE}"))
            .await?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }
}

/// A connection borrowed from the pool; returned on drop.
pub(crate) struct Pooled<'a> {
    conn: Option<PgConn>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Pooled<'_> {
    type Target = PgConn;

    fn deref(&self) -> &PgConn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut PgConn {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}
