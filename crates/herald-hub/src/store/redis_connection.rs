//! [`RedisEndpoint`]: the connections the Redis store uses, to one Redis or to a Redis
//! Cluster, behind one type.
//!
//! A single Redis is reached through a [`ConnectionManager`] (a multiplexed connection that
//! reconnects by itself); a Redis Cluster through a [`ClusterConnection`], which follows
//! `MOVED` redirections and refreshes the slot map. The store's keys share one hash tag, so
//! on a cluster every command of one hub goes to the shard owning that slot.

use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

use super::StoreError;

/// Where the store's Redis is, with one connection for commands and one for the blocking
/// tail read (which would hold up every command queued behind it on a shared connection).
// One per store, never moved around: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RedisEndpoint {
    /// One Redis (`redis://host:port[/db]`).
    Single {
        commands: ConnectionManager,
        tail: ConnectionManager,
    },
    /// A Redis Cluster (`redis-cluster://host:port[,host:port…]`), connected on first use.
    Cluster {
        commands_client: ClusterClient,
        tail_client: ClusterClient,
        commands: OnceCell<ClusterConnection>,
        tail: OnceCell<ClusterConnection>,
    },
}

/// How long the connections may wait.
pub(crate) struct Timeouts {
    /// Opening a connection.
    pub(crate) connect: Duration,
    /// A command's reply.
    pub(crate) response: Duration,
    /// A tail read's reply (longer: the read blocks in Redis by design).
    pub(crate) tail_response: Duration,
}

/// The scheme that selects a Redis Cluster.
const CLUSTER_SCHEME: &str = "redis-cluster://";

impl RedisEndpoint {
    /// Prepares the connections for `url` without connecting.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub(crate) fn new(url: &str, timeouts: &Timeouts) -> Result<RedisEndpoint, StoreError> {
        let invalid = |error: ::redis::RedisError| {
            StoreError::Unavailable(format!("invalid Redis URL {url}: {error}"))
        };
        if let Some(seeds) = url.strip_prefix(CLUSTER_SCHEME) {
            let seeds: Vec<String> = seeds
                .split(',')
                .filter(|seed| !seed.is_empty())
                .map(|seed| format!("redis://{seed}"))
                .collect();
            if seeds.is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "invalid Redis URL {url}: name at least one cluster node (host:port)"
                )));
            }
            let client = |response: Duration| {
                ClusterClient::builder(seeds.clone())
                    .connection_timeout(timeouts.connect)
                    .response_timeout(response)
                    .retries(2)
                    .build()
                    .map_err(invalid)
            };
            return Ok(RedisEndpoint::Cluster {
                commands_client: client(timeouts.response)?,
                tail_client: client(timeouts.tail_response)?,
                commands: OnceCell::new(),
                tail: OnceCell::new(),
            });
        }
        let client = Client::open(url).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response))
            // Few, short reconnect attempts per failure: during an outage a publish must fail
            // fast (503) rather than wait out a long backoff; the next command tries again.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(invalid)?;
        let tail = ConnectionManager::new_lazy_with_config(
            client,
            config.set_response_timeout(Some(timeouts.tail_response)),
        )
        .map_err(invalid)?;
        Ok(RedisEndpoint::Single { commands, tail })
    }

    /// The connection for commands.
    pub(crate) async fn commands(&self) -> RedisResult<RedisConnection> {
        match self {
            RedisEndpoint::Single { commands, .. } => Ok(RedisConnection::Single(commands.clone())),
            RedisEndpoint::Cluster {
                commands_client,
                commands,
                ..
            } => connect_once(commands_client, commands).await,
        }
    }

    /// The connection for the blocking tail read.
    pub(crate) async fn tail(&self) -> RedisResult<RedisConnection> {
        match self {
            RedisEndpoint::Single { tail, .. } => Ok(RedisConnection::Single(tail.clone())),
            RedisEndpoint::Cluster {
                tail_client, tail, ..
            } => connect_once(tail_client, tail).await,
        }
    }
}

/// The cluster connection, opened on first use; a failed attempt is retried on the next
/// call (the cell stays empty).
async fn connect_once(
    client: &ClusterClient,
    cell: &OnceCell<ClusterConnection>,
) -> RedisResult<RedisConnection> {
    let connection = cell
        .get_or_try_init(|| client.get_async_connection())
        .await?;
    Ok(RedisConnection::Cluster(connection.clone()))
}

/// A cheap clone of either connection, usable wherever redis-rs takes a connection.
#[derive(Clone)]
pub(crate) enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(connection) => connection.req_packed_command(cmd),
            RedisConnection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            RedisConnection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(connection) => connection.get_db(),
            RedisConnection::Cluster(connection) => connection.get_db(),
        }
    }
}
