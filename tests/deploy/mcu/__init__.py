"""Tests of tinyclap.deploy.mcu (microcontroller export)."""
