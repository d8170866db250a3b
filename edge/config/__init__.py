"""The configuration: one strict schema (:class:`AppConfig`) made of typed sections, and its loader.

This package imports no runtime code (arrows point one way: runtime modules import their section
from here, never the reverse), so validating a config never loads OpenCV or an interpreter.
One module per section (``edge/config/<section>.py``); :mod:`edge.config.loading` reads YAML.
"""
from edge.config.app import AppConfig, section_models
from edge.config.base import StrictModel
from edge.config.errors import ConfigError, Problem
from edge.config.loading import (DEFAULT_PATHS, Document, LoadedConfig, default_path, document_version, json_schema,
                                 load_config, load_file, load_text, parse_yaml, substitute_env, validate_document)
from edge.config.service import RemoteConfigConfig

__all__ = ["AppConfig", "ConfigError", "DEFAULT_PATHS", "Document", "LoadedConfig", "Problem", "RemoteConfigConfig",
           "StrictModel", "default_path", "document_version", "json_schema", "load_config", "load_file", "load_text",
           "parse_yaml", "section_models", "substitute_env", "validate_document"]
