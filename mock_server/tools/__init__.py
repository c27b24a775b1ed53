"""Tools that talk to a running emulator: the control client, the cmdlet shell, the log view, the demo,
process control and the pytest plugin. Nothing in the server imports from here."""
