"""Shared kit: config, HTTP clients, logging, health views. No domain logic."""
