//! Dedup by `event_id` across batches and restarts.
//!
//! The state is silver itself: at start the ids of the last `window` days of event time are read
//! back from `pos_event_lines` (two narrow columns of one row per event), so the index can never
//! disagree with what was committed. An event older than the window is checked against its own
//! day, read on demand. Memory stays bounded by the window: days that fall out of it are dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, AsArray, Int64Array};
use deltalake::arrow::datatypes::Int32Type;
use object_store::ObjectStore;

use crate::RefineError;
use crate::parse::id_hash;
use stocklake_silver::read::{SilverFile, active_files, read_files};
use stocklake_silver::{day_string, parse_day};

/// What dedup says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    New,
    /// The same event again: dropped and counted.
    Duplicate,
    /// The same id with other content: quarantined as `duplicate_conflict`.
    Conflict,
}

#[derive(Debug, Default)]
pub struct DedupIndex {
    map: HashMap<u128, (u64, i32)>,
    /// Days whose silver ids are all in `map`.
    loaded: BTreeSet<i32>,
    window_days: i32,
    /// The latest event day in silver (or seen in this run).
    watermark: Option<i32>,
    /// Ids inserted by the batch in progress, undone if it fails.
    pending: Vec<u128>,
}

impl DedupIndex {
    pub fn new(window_days: u32) -> DedupIndex {
        DedupIndex {
            window_days: window_days.max(1) as i32,
            ..DedupIndex::default()
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn window_start(&self) -> Option<i32> {
        self.watermark.map(|w| w - self.window_days)
    }

    /// Days of `dates` whose silver ids must be read before dedup can judge them.
    pub fn missing_days(&self, dates: impl IntoIterator<Item = i32>) -> Vec<i32> {
        let mut out: BTreeSet<i32> = BTreeSet::new();
        for d in dates {
            let beyond_silver = self.watermark.is_none_or(|w| d > w);
            if !beyond_silver && !self.loaded.contains(&d) {
                out.insert(d);
            }
        }
        out.into_iter().collect()
    }

    /// Records that every id of day `date` is now known (including none).
    pub fn mark_loaded(&mut self, date: i32) {
        self.loaded.insert(date);
    }

    fn insert_known(&mut self, id: u128, fingerprint: u64, date: i32) {
        self.map.entry(id).or_insert((fingerprint, date));
    }

    /// Judges one event of the batch in progress; a new one is remembered.
    pub fn check(&mut self, id: u128, fingerprint: u64, date: i32) -> Verdict {
        match self.map.get(&id) {
            Some((fp, _)) if *fp == fingerprint => Verdict::Duplicate,
            Some(_) => Verdict::Conflict,
            None => {
                self.map.insert(id, (fingerprint, date));
                self.pending.push(id);
                Verdict::New
            }
        }
    }

    /// The batch was committed: keep its ids; move the window.
    pub fn commit(&mut self, max_date: Option<i32>) {
        self.pending.clear();
        if let Some(d) = max_date {
            let old_start = self.window_start();
            self.watermark = Some(self.watermark.map_or(d, |w| w.max(d)));
            // days past the old watermark had nothing in silver: they are complete now
            if let Some(start) = self.window_start()
                && old_start != Some(start)
            {
                self.map.retain(|_, (_, day)| *day >= start);
                self.loaded.retain(|day| *day >= start);
            }
        }
    }

    /// The batch failed: forget its ids.
    pub fn rollback(&mut self) {
        for id in self.pending.drain(..) {
            self.map.remove(&id);
        }
    }

    /// Sets the watermark from silver at start.
    pub fn set_watermark(&mut self, day: Option<i32>) {
        self.watermark = day;
    }

    /// The days to read at start: the window up to the watermark.
    pub fn startup_days(&self) -> Vec<i32> {
        match (self.window_start(), self.watermark) {
            (Some(s), Some(w)) => (s..=w).collect(),
            _ => Vec::new(),
        }
    }

    /// Reads the ids of `days` from silver into the index.
    pub async fn load_days(
        &mut self,
        table: &DeltaTable,
        store: Arc<dyn ObjectStore>,
        days: &[i32],
    ) -> Result<usize, RefineError> {
        if days.is_empty() || table.version().is_none() {
            for d in days {
                self.mark_loaded(*d);
            }
            return Ok(0);
        }
        let wanted: BTreeSet<String> = days.iter().map(|d| day_string(*d)).collect();
        let files: Vec<SilverFile> = active_files(table)
            .await?
            .into_iter()
            .filter(|f| {
                f.partition
                    .get("event_date")
                    .and_then(|v| v.as_deref())
                    .is_some_and(|v| wanted.contains(v))
            })
            .collect();
        let mut n = 0;
        for (file, batches) in read_files(
            store,
            &files,
            Some(&["event_id", "line_no", "event_fingerprint"]),
        )
        .await?
        {
            let day = file
                .partition
                .get("event_date")
                .and_then(|v| v.as_deref())
                .and_then(parse_day)
                .unwrap_or(0);
            for b in batches {
                let (Some(ids), Some(line_no), Some(fps)) = (
                    b.column_by_name("event_id")
                        .and_then(|c| c.as_string_opt::<i32>()),
                    b.column_by_name("line_no")
                        .and_then(|c| c.as_primitive_opt::<Int32Type>()),
                    b.column_by_name("event_fingerprint")
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
                ) else {
                    return Err(RefineError::Internal(format!(
                        "{} lacks the dedup columns",
                        file.path
                    )));
                };
                for i in 0..b.num_rows() {
                    if line_no.value(i) == 0 && !ids.is_null(i) {
                        self.insert_known(id_hash(ids.value(i)), fps.value(i) as u64, day);
                        n += 1;
                    }
                }
            }
        }
        for d in days {
            self.mark_loaded(*d);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_rollback() {
        let mut d = DedupIndex::new(7);
        assert_eq!(d.check(1, 10, 100), Verdict::New);
        assert_eq!(d.check(1, 10, 100), Verdict::Duplicate);
        assert_eq!(d.check(1, 11, 100), Verdict::Conflict);
        assert_eq!(d.check(2, 20, 100), Verdict::New);
        d.rollback();
        assert!(d.is_empty());
        assert_eq!(d.check(1, 10, 100), Verdict::New);
        d.commit(Some(100));
        assert_eq!(d.len(), 1);
        assert_eq!(d.check(1, 10, 100), Verdict::Duplicate);
    }

    #[test]
    fn the_window_bounds_memory_and_old_days_are_read_on_demand() {
        let mut d = DedupIndex::new(7);
        d.set_watermark(Some(100));
        assert_eq!(d.startup_days(), (93..=100).collect::<Vec<_>>());
        for day in 93..=100 {
            d.mark_loaded(day);
        }
        assert_eq!(d.check(1, 1, 95), Verdict::New);
        d.commit(Some(100));
        // a late event of day 80 needs day 80 read; a future day needs nothing
        assert_eq!(d.missing_days([80, 95, 101]), vec![80]);
        // ten days later day 95 has left the window
        assert_eq!(d.check(2, 2, 110), Verdict::New);
        d.commit(Some(110));
        assert_eq!(d.len(), 1);
        assert_eq!(d.missing_days([95]), vec![95]);
    }
}
