"""The config file: its schema (pydantic) and its loader (YAML, ${ENV} secrets, line numbers)."""

from polyroute.config.errors import ConfigError
from polyroute.config.loader import load_config, parse_config
from polyroute.config.schema import (
    DeploymentConfig,
    GatewayConfig,
    KeyConfig,
    PriceConfig,
    RouteConfig,
    ServerConfig,
    TimeoutConfig,
)

__all__ = [
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "KeyConfig",
    "PriceConfig",
    "RouteConfig",
    "ServerConfig",
    "TimeoutConfig",
    "load_config",
    "parse_config",
]
