"""Speech: a voice, its acoustic model and vocoder, audio output and batch jobs."""
