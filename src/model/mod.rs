//! Modelled infrastructure: network, etcd, apiserver, kubelets, and the API
//! client every component embeds. Components talk only through messages on the
//! modelled network.
pub mod apiserver;
pub mod client;
pub mod etcd;
pub mod kubelet;
pub mod load;
pub mod msg;
pub mod network;
pub mod reflector;
pub mod registry;
pub mod world;
