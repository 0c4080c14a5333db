"""Batches: many texts to many WAVs. A job file read and checked (``jobs``), where the WAVs go and
the checks on them before anything is written (``outputs``), each job's result and the results
file a run resumes from (``results``), and the two runners: in this process (``local``) and on
Ray (``ray``). ``synth --lines/--jsonl`` is parse-and-dispatch over these."""
