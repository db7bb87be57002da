"""`python -m grim_dispatcher ...`: the same commands as `grim dispatcher ...`."""

from grim_dispatcher.cli import app

app(prog_name="grim_dispatcher")
