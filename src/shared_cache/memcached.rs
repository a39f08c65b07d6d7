//! The memcached servers of a shared cache, spoken to with Shopify's
//! `async-memcached` (tokio, the meta protocol: values with their CAS
//! token, compare-and-set, add). A key lives on one server, chosen by
//! rendezvous hashing (the highest hash of server and key), so every replica
//! picks the same one and a lost server moves only its own keys' state back
//! into the replicas. Each worker thread keeps its own few connections per
//! server (a connection is driven by the runtime that opened it). Every
//! exchange is bounded by the timeout; a server that failed is left alone
//! for `dead_retry`, then tried again.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_memcached::{Client, Error, MetaProtocol, Status};
use sha2::{Digest, Sha256};

/// What memcached answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The value and its CAS token.
    Found(Vec<u8>, u64),
    Missing,
    Stored,
    /// An add found the key there, or a compare-and-set found it changed.
    NotStored,
}

/// Why there was no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server failed a moment ago: not asked.
    Resting,
    /// Connecting, the exchange, or the timeout failed.
    Failed(String),
}

struct Server {
    address: String,
    /// Milliseconds from `Servers::epoch` before which the server is not asked.
    resting_until_ms: AtomicU64,
}

pub struct Servers {
    servers: Vec<Server>,
    timeout: Duration,
    pool_size: usize,
    dead_retry: Duration,
    epoch: Instant,
    /// Identifies this set's per-thread connections; they go with it.
    alive: Arc<()>,
}

/// One thread's idle connections of one [`Servers`], by server.
type ThreadPools = Vec<(Weak<()>, Vec<Vec<Client>>)>;

thread_local! {
    static POOLS: RefCell<ThreadPools> = const { RefCell::new(Vec::new()) };
}

/// An operation on one key.
#[derive(Clone, Copy)]
pub enum Op<'a> {
    /// The value and its CAS token.
    Get,
    /// Stored whatever was there.
    Set(&'a [u8], Duration),
    /// Stored only if the key is not there.
    Add(&'a [u8], Duration),
    /// Stored only if the key still has this CAS token.
    CompareAndSet(&'a [u8], Duration, u64),
    Delete,
}

impl Servers {
    pub fn new(addresses: &[String], timeout: Duration, pool_size: usize, dead_retry: Duration) -> Self {
        Servers {
            servers: addresses
                .iter()
                .map(|address| Server {
                    address: address.clone(),
                    resting_until_ms: AtomicU64::new(0),
                })
                .collect(),
            timeout,
            pool_size,
            dead_retry,
            epoch: Instant::now(),
            alive: Arc::new(()),
        }
    }

    /// The server of `key`: the highest SHA-256 of server and key.
    fn server_of(&self, key: &str) -> usize {
        (0..self.servers.len())
            .max_by_key(|&index| {
                let mut hash = Sha256::new();
                hash.update(self.servers[index].address.as_bytes());
                hash.update([0]);
                hash.update(key.as_bytes());
                let digest = hash.finalize();
                u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
            })
            .unwrap_or(0)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `op` on `key`, on the key's server.
    pub async fn run(&self, key: &str, op: Op<'_>) -> Result<Answer, Failure> {
        let index = self.server_of(key);
        let server = &self.servers[index];
        if self.now_ms() < server.resting_until_ms.load(Ordering::Relaxed) {
            return Err(Failure::Resting);
        }
        let exchange = async {
            if let Some(mut pooled) = self.checkout(index) {
                match exchange(&mut pooled, key, op).await {
                    Ok(answer) => {
                        self.check_in(index, pooled);
                        return Ok(answer);
                    }
                    // An idle connection the server closed (it restarted,
                    // say): so are the others likely; once more, on a new one.
                    Err(_) => self.drop_idle(index),
                }
            }
            let mut client = Client::new(format!("tcp://{}", server.address))
                .await
                .map_err(|error| error.to_string())?;
            let answer = exchange(&mut client, key, op)
                .await
                .map_err(|error| error.to_string())?;
            self.check_in(index, client);
            Ok(answer)
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        result.map_err(|detail| {
            let until = self
                .now_ms()
                .saturating_add(u64::try_from(self.dead_retry.as_millis()).unwrap_or(u64::MAX));
            server.resting_until_ms.store(until, Ordering::Relaxed);
            Failure::Failed(format!("{}: {detail}", server.address))
        })
    }

    /// Where this set's connections are among a thread's pools, if there.
    fn own_pools(&self, pools: &ThreadPools) -> Option<usize> {
        pools
            .iter()
            .position(|(alive, _)| std::ptr::eq(alive.as_ptr(), Arc::as_ptr(&self.alive)))
    }

    fn checkout(&self, index: usize) -> Option<Client> {
        POOLS.with_borrow_mut(|pools| {
            let own = self.own_pools(pools)?;
            pools[own].1.get_mut(index)?.pop()
        })
    }

    /// Closes this thread's idle connections to server `index`.
    fn drop_idle(&self, index: usize) {
        POOLS.with_borrow_mut(|pools| {
            if let Some(own) = self.own_pools(pools)
                && let Some(idle) = pools[own].1.get_mut(index)
            {
                idle.clear();
            }
        });
    }

    fn check_in(&self, index: usize, client: Client) {
        if client.is_closed() {
            return;
        }
        POOLS.with_borrow_mut(|pools| {
            pools.retain(|(alive, _)| alive.strong_count() > 0);
            let position = match self.own_pools(pools) {
                Some(position) => position,
                None => {
                    let empty = (0..self.servers.len()).map(|_| Vec::new()).collect();
                    pools.push((Arc::downgrade(&self.alive), empty));
                    pools.len() - 1
                }
            };
            if let Some(idle) = pools[position].1.get_mut(index)
                && idle.len() < self.pool_size
            {
                idle.push(client);
            }
        });
    }
}

/// One exchange on one connection.
async fn exchange(client: &mut Client, key: &str, op: Op<'_>) -> Result<Answer, Error> {
    // memcached counts expiry in whole seconds of a clock that ticks once a
    // second: rounded up, and a second more, so nothing goes early.
    let ttl = |ttl: Duration| format!("T{}", ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0) + 1);
    let stored = |result: Result<_, Error>| match result {
        Ok(_) => Ok(Answer::Stored),
        Err(Error::Protocol(Status::NotStored | Status::Exists | Status::NotFound)) => Ok(Answer::NotStored),
        Err(error) => Err(error),
    };
    match op {
        Op::Get => match client.meta_get(key, false, None, Some(&["v", "c"])).await? {
            Some(value) => Ok(Answer::Found(
                value.data.unwrap_or_default(),
                value.cas.unwrap_or_default(),
            )),
            None => Ok(Answer::Missing),
        },
        Op::Set(value, expiry) => stored(client.meta_set(key, value, false, None, Some(&[&ttl(expiry)])).await),
        Op::Add(value, expiry) => stored(
            client
                .meta_set(key, value, false, None, Some(&[&ttl(expiry), "ME"]))
                .await,
        ),
        Op::CompareAndSet(value, expiry, cas) => stored(
            client
                .meta_set(key, value, false, None, Some(&[&ttl(expiry), &format!("C{cas}")]))
                .await,
        ),
        Op::Delete => match client.meta_delete(key, false, None, None).await {
            Ok(_) | Err(Error::Protocol(Status::NotFound)) => Ok(Answer::Stored),
            Err(error) => Err(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replica_picks_the_same_server_and_keys_spread() {
        let addresses: Vec<String> = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]
            .map(String::from)
            .to_vec();
        let one = Servers::new(&addresses, Duration::from_millis(1), 1, Duration::ZERO);
        let other = Servers::new(&addresses, Duration::from_millis(1), 1, Duration::ZERO);
        let mut counts = [0; 3];
        for key in 0..3_000 {
            let key = format!("ag1:{key}");
            assert_eq!(one.server_of(&key), other.server_of(&key));
            counts[one.server_of(&key)] += 1;
        }
        assert!(counts.iter().all(|count| (800..1200).contains(count)), "{counts:?}");
        // A server gone moves only its own keys.
        let two = Servers::new(&addresses[..2], Duration::from_millis(1), 1, Duration::ZERO);
        for key in 0..300 {
            let key = format!("ag1:{key}");
            if one.server_of(&key) < 2 {
                assert_eq!(one.server_of(&key), two.server_of(&key));
            }
        }
    }

    #[tokio::test]
    async fn a_server_that_fails_rests_then_is_tried_again() {
        // A port nothing listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers = Servers::new(
            &[format!("127.0.0.1:{port}")],
            Duration::from_millis(200),
            1,
            Duration::from_millis(100),
        );
        assert!(matches!(servers.run("k", Op::Get).await, Err(Failure::Failed(_))));
        assert_eq!(servers.run("k", Op::Get).await, Err(Failure::Resting));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(servers.run("k", Op::Get).await, Err(Failure::Failed(_))));
    }
}
