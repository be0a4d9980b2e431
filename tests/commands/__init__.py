"""Tests of whole commands run as a user runs them: reliability, the wheel, the committed weights."""
