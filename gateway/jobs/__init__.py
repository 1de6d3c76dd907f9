"""Jobs: long tool calls (transcriptions, extractions) run in the background, behind one
interface (engine.py) with two engines: saq on Redis (saq_engine.py) or in-process."""
