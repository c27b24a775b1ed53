"""The emulator's own API under /_m365/: inspection and set-up, protected by the admin key."""
