//! etcd: a Raft group of 1, 3 or 5 members and the MVCC store they apply to.
pub mod raft;
pub mod store;

pub use raft::{EtcdConfig, EtcdMember};
pub use store::EtcdStore;
