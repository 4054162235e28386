//! Seeded randomness: one root seed per run, one independent ChaCha stream per
//! component.
//!
//! A stream is derived from `(root seed, stable component name)` by hashing,
//! so adding a component (a node, a controller) never shifts the draws any
//! other component sees, and a stream's draws depend only on its own history.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

/// A deterministic random stream owned by exactly one component.
pub struct RngStream {
    inner: ChaCha12Rng,
    /// The second normal of the last Box–Muller pair, used by the next call.
    spare_normal: Option<f64>,
}

impl RngStream {
    /// Derives the stream for `name` from the run's root `seed`.
    pub fn derive(seed: u64, name: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("kubesim rng stream v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(name.as_bytes());
        let key: [u8; 32] = *hasher.finalize().as_bytes();
        RngStream {
            inner: ChaCha12Rng::from_seed(key),
            spare_normal: None,
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [lo, hi] (inclusive). Unbiased (Lemire's method).
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        let n = span + 1;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return lo + (m >> 64) as u64;
            }
        }
    }

    /// True with probability `p` (clamped to [0, 1]).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.unit() < p
    }

    /// A standard normal draw (Box–Muller). Each pair yields two draws; the
    /// second is kept for the next call, which halves the cost of the
    /// log-normal latencies every message samples. The spare is part of the
    /// stream's state, so the sequence stays a pure function of the seed;
    /// `libm`'s log and sincos keep it the same on every platform.
    pub fn standard_normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        let r = (-2.0 * libm::log(u1)).sqrt();
        let (sin, cos) = libm::sincos(std::f64::consts::TAU * u2);
        self.spare_normal = Some(r * sin);
        r * cos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let mut a = RngStream::derive(42, "kubelet/node-1");
        let mut b = RngStream::derive(42, "kubelet/node-1");
        let mut c = RngStream::derive(42, "kubelet/node-2");
        let mut d = RngStream::derive(43, "kubelet/node-1");
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        let xd: Vec<u64> = (0..4).map(|_| d.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_ne!(xa, xd);
    }

    #[test]
    fn range_stays_in_bounds() {
        let mut r = RngStream::derive(1, "t");
        for _ in 0..10_000 {
            let v = r.range_inclusive(10, 19);
            assert!((10..=19).contains(&v));
        }
        assert_eq!(r.range_inclusive(5, 5), 5);
    }
}
