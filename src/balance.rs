//! Splitting independent work between threads or processes.

/// Splits `items` into `workers` shares of about equal `cost`: the costliest
/// first, each to the share that costs least so far, so that one large item
/// does not leave a worker busy long after the others are done.
pub fn shares<T>(
    items: impl IntoIterator<Item = T>,
    workers: usize,
    cost: impl Fn(&T) -> u64,
) -> Vec<Vec<T>> {
    let mut items: Vec<(u64, T)> = items.into_iter().map(|item| (cost(&item), item)).collect();
    items.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
    let mut shares: Vec<(u64, Vec<T>)> = (0..workers.max(1)).map(|_| (0, Vec::new())).collect();
    for (cost, item) in items {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least one share");
        lightest.0 += cost;
        lightest.1.push(item);
    }
    shares.into_iter().map(|(_, share)| share).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_items_spread_and_small_ones_fill_in() {
        let split = shares([10, 1, 9, 2, 8, 3], 2, |size| *size);
        assert_eq!(split, vec![vec![10, 3, 2, 1], vec![9, 8]]);
        let sums: Vec<u64> = split.iter().map(|share| share.iter().sum()).collect();
        assert_eq!(sums, vec![16, 17]);
        assert_eq!(shares([5], 3, |size| *size), vec![vec![5], vec![], vec![]]);
    }
}
