"""The record: every conversation kept in a SQL database, searchable, with reports.

Redis holds the live state and the bus; the record stream (``sessions/record_log.py``)
carries every accepted change to the archiver (``archiver.py``), which copies it into SQL
(``schema.py``, migrations under ``migrations/``) exactly once. ``queries.py`` reads it
(search, transcripts, export), ``reports.py`` sums it up, ``privacy.py`` erases and purges.
"""
