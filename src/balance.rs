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

/// Splits `items`, in their order, into at most `workers` runs of about
/// equal `cost`: for work that must be done in order within a run (reading
/// a stream from where the run starts).
pub fn runs<T>(items: Vec<T>, workers: usize, cost: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let total: u64 = items.iter().map(&cost).sum();
    let workers = workers.max(1) as u64;
    let mut runs: Vec<Vec<T>> = vec![Vec::new()];
    let mut done = 0;
    for item in items {
        // Past this run's share of the total: the next run starts.
        let ran = runs.len() as u64;
        if done >= total * ran / workers && ran < workers && !runs[runs.len() - 1].is_empty() {
            runs.push(Vec::new());
        }
        done += cost(&item);
        runs.last_mut().expect("at least one run").push(item);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_the_order_and_split_the_cost() {
        assert_eq!(
            runs(vec![1, 1, 1, 1, 4, 1, 1], 2, |size| *size),
            vec![vec![1, 1, 1, 1, 4], vec![1, 1]]
        );
        assert_eq!(
            runs(vec![3, 3, 3, 3], 2, |size| *size),
            vec![vec![3, 3], vec![3, 3]]
        );
        assert_eq!(runs(vec![5], 3, |size| *size), vec![vec![5]]);
        assert_eq!(
            runs(Vec::<u64>::new(), 2, |size| *size),
            vec![Vec::<u64>::new()]
        );
    }

    #[test]
    fn large_items_spread_and_small_ones_fill_in() {
        let split = shares([10, 1, 9, 2, 8, 3], 2, |size| *size);
        assert_eq!(split, vec![vec![10, 3, 2, 1], vec![9, 8]]);
        let sums: Vec<u64> = split.iter().map(|share| share.iter().sum()).collect();
        assert_eq!(sums, vec![16, 17]);
        assert_eq!(shares([5], 3, |size| *size), vec![vec![5], vec![], vec![]]);
    }
}
