-- FTS5 merges the search table's segments sixteen at a time instead of
-- four (`automerge`, kept in the table's config). Each write makes a
-- segment, and merging rewrites every batch's trigrams once per level it
-- climbs: a first sync of 100,000 batches (about 50 writes) climbed about
-- three levels at four, one or two at sixteen. Interleaved
-- `BENCH_ONLY=sync` runs, five each: 17,714 against 19,489 rows/s
-- (medians; the dashboard's CPU 5.8 against 5.3 s). A search looks in more
-- segments (up to 15 per level); its p99 at 100,000 batches stayed
-- 1.24 / 1.29 ms.
INSERT INTO batches_search (batches_search, rank) VALUES ('automerge', 16);
