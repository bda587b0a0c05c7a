//! Small sampling helpers over a seeded ChaCha generator, so that a seed gives the same chain,
//! byte for byte, on every run.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use rust_decimal::Decimal;

/// Picks one element uniformly.
pub fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A Poisson draw; 0 for a non-positive or non-finite mean.
pub fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if !(mean.is_finite() && mean > 0.0) {
        return 0;
    }
    match Poisson::new(mean) {
        Ok(p) => {
            let x: f64 = p.sample(rng);
            x as u64
        }
        Err(_) => 0,
    }
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A shelf price: two decimals ending in 9 (0.49, 1.99, 12.49 …).
pub fn round_price(p: f64) -> Decimal {
    let cents = (p * 100.0).round().max(19.0) as i64;
    let cents = cents - cents % 10 + 9;
    Decimal::new(cents, 2)
}

/// Walker's alias method: O(1) draws from a fixed discrete distribution.
#[derive(Debug, Clone)]
pub struct WeightedIndex {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl WeightedIndex {
    /// `weights` must be non-negative with a positive sum; an all-zero table draws uniformly.
    pub fn new(weights: Vec<f64>) -> WeightedIndex {
        let n = weights.len().max(1);
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        let mut scaled: Vec<f64> = if total > 0.0 {
            weights
                .iter()
                .map(|w| {
                    if w.is_finite() && *w > 0.0 {
                        w * n as f64 / total
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            vec![1.0; n]
        };
        scaled.resize(n, 0.0);
        let mut prob = vec![0.0; n];
        let mut alias = vec![0u32; n];
        let mut small: Vec<usize> = Vec::new();
        let mut large: Vec<usize> = Vec::new();
        for (i, p) in scaled.iter().enumerate() {
            if *p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while !small.is_empty() && !large.is_empty() {
            let (Some(s), Some(l)) = (small.pop(), large.pop()) else {
                break;
            };
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] = scaled[l] + scaled[s] - 1.0;
            if scaled[l] < 1.0 {
                small.push(l);
            } else {
                large.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            prob[i] = 1.0;
        }
        WeightedIndex { prob, alias }
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn alias_table_follows_the_weights() {
        let w = WeightedIndex::new(vec![1.0, 0.0, 3.0, 6.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = |i: usize| f64::from(counts[i]) / 100_000.0;
        assert!((share(0) - 0.1).abs() < 0.01, "{counts:?}");
        assert!((share(2) - 0.3).abs() < 0.01, "{counts:?}");
        assert!((share(3) - 0.6).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn prices_end_in_nine() {
        assert_eq!(round_price(1.234).to_string(), "1.29");
        assert_eq!(round_price(0.01).to_string(), "0.19");
        assert_eq!(round_price(9.99).to_string(), "9.99");
    }

    #[test]
    fn poisson_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = 20_000;
        let total: u64 = (0..n).map(|_| poisson(&mut rng, 4.5)).sum();
        let mean = total as f64 / f64::from(n);
        assert!((mean - 4.5).abs() < 0.1, "{mean}");
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }
}
