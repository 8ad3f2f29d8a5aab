"""Revisions of the review database, oldest first: ``rev_0001_initial`` is the first release's schema."""
