"""Tests of the resilience operator."""
