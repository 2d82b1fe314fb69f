from kcm.cli import entry

entry()
