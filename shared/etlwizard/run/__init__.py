"""The run engine (docs/architecture.md, "A request" and "Run semantics"): one run of one job, in small parts.

- state:  what a run is (Run, RunStatus, Window, Chunk, RunMessage)
- engine: the entry: a run message -> a run, from lease to watermark
- plan:   the window to read, the resume point, slices and chunks
- lease:  one run per job at a time; the watermark moves with the lease's release
- heartbeat: the lease renewed while a run works; whether it may go on (stopping, lease lost)
- stage:  read -> Arrow -> Parquet files -> load jobs into a staging table, several in flight
- commit: the one MERGE that makes a window's rows visible
- chunks: a large window fanned out as chunk messages, committed by the last chunk to finish
- recovery: runs whose worker died (abandoned), and the staging tables they left
"""
