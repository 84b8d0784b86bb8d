"""Tests of operators: one package per operator (``autopilot new operator`` adds one)."""
