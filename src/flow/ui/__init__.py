"""The visualiser: a read-only web server over the run history, its page, and HTML reports."""
