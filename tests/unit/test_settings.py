from __future__ import annotations

import pytest

from orgbase.core.settings import (
    SettingsError,
    parse_env_file,
    resolver_address,
    settings_from_env,
)

BASE = {
    "ORGBASE_ENV": "prod",
    "ORGBASE_DATABASE_API_URL": "postgresql://orgbase_api:a@127.0.0.1:5432/orgbase",
    "ORGBASE_DATABASE_SYSTEM_URL": "postgresql://orgbase_system:b@127.0.0.1:5432/orgbase",
    "ORGBASE_DATABASE_MIGRATION_URL": "postgresql://owner:c@127.0.0.1:5432/orgbase",
    "ORGBASE_REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380",
    "ORGBASE_REDIS_PASSWORD": "r",
    "ORGBASE_REDIS_SENTINEL_PASSWORD": "s",
    "ORGBASE_MONGO_URL": "mongodb://127.0.0.1:27017",
    "ORGBASE_AUTH_SIGNING_KEYS_FILE": "/run/secrets/jwks.json",
}


def test_dns_resolvers_take_addresses_and_ports() -> None:
    settings = settings_from_env(
        {**BASE, "ORGBASE_TENANCY_DNS_RESOLVERS": "10.0.0.2, 127.0.0.1:5353, [::1]:5300, ::1"}
    )
    assert [resolver_address(r) for r in settings.tenancy.dns_resolvers] == [
        ("10.0.0.2", 53),
        ("127.0.0.1", 5353),
        ("::1", 5300),
        ("::1", 53),
    ]
    assert settings_from_env(BASE).tenancy.dns_resolvers == ()  # the system's resolver


def test_builds_a_typed_tree_from_variables() -> None:
    settings = settings_from_env({**BASE, "ORGBASE_HTTP_PORT": "9000", "PATH": "/usr/bin"})
    assert settings.http.port == 9000
    assert settings.redis.sentinel_addresses() == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert settings.database.api_pool_max == 10
    assert settings.env == "prod"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORGBASE_HTTP_PORT", "eighty"),
        ("ORGBASE_HTTP_PORT", "70000"),
        ("ORGBASE_DATABASE_API_URL", "mysql://x@y/z"),
        ("ORGBASE_LOG_LEVEL", "loud"),
        ("ORGBASE_REDIS_SENTINELS", "nohostport"),
        ("ORGBASE_REDIS_SENTINELS", "127.0.0.1:²⁶³⁷⁹"),
        ("ORGBASE_ENV", "staging"),
        ("ORGBASE_TENANCY_DNS_RESOLVERS", "dns.example:53"),
        ("ORGBASE_TENANCY_DNS_RESOLVERS", "127.0.0.1:٥٣"),
        ("ORGBASE_TENANCY_DNS_RESOLVERS", "[::1]x"),
        ("ORGBASE_TENANCY_DNS_RESOLVERS", "127.0.0.1:0"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_env({**BASE, variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_a_missing_required_variable_is_named() -> None:
    env = {k: v for k, v in BASE.items() if k != "ORGBASE_MONGO_URL"}
    with pytest.raises(SettingsError, match="ORGBASE_MONGO_URL: is required"):
        settings_from_env(env)


def test_a_misspelt_variable_is_refused_with_a_suggestion() -> None:
    with pytest.raises(SettingsError, match="did you mean ORGBASE_HTTP_PORT"):
        settings_from_env({**BASE, "ORGBASE_HTTP_PROT": "1"})


def test_secrets_have_no_silent_default_outside_dev() -> None:
    env = {k: v for k, v in BASE.items() if k != "ORGBASE_REDIS_PASSWORD"}
    with pytest.raises(SettingsError, match="ORGBASE_REDIS_PASSWORD: is required outside dev mode"):
        settings_from_env(env)
    assert settings_from_env({**env, "ORGBASE_ENV": "dev"}).redis.password is None


def test_signing_keys_are_required_outside_dev() -> None:
    env = {k: v for k, v in BASE.items() if k != "ORGBASE_AUTH_SIGNING_KEYS_FILE"}
    with pytest.raises(SettingsError) as caught:
        settings_from_env(env)
    assert caught.value.variable == "ORGBASE_AUTH_SIGNING_KEYS_FILE"


def test_local_tooling_variables_are_not_settings() -> None:
    settings = settings_from_env({**BASE, "ORGBASE_LOCAL_STATE_DIR": "/tmp/x"})
    assert settings.http.port == 8000


def test_env_file_parsing() -> None:
    text = "# comment\n\nexport A=1\nB='two words'\nC=\"x=y\"\n"
    assert parse_env_file(text) == {"A": "1", "B": "two words", "C": "x=y"}
    with pytest.raises(SettingsError, match="line 1"):
        parse_env_file("not a pair\n")


def test_redis_cluster_and_read_replica_settings() -> None:
    cluster = {k: v for k, v in BASE.items() if k != "ORGBASE_REDIS_SENTINELS"}
    cluster["ORGBASE_REDIS_CLUSTER_NODES"] = "10.0.0.1:7000,10.0.0.2:7000"
    settings = settings_from_env(
        {**cluster, "ORGBASE_DATABASE_REPLICA_URLS": "postgresql://orgbase_api:a@replica/orgbase"}
    )
    assert settings.redis.cluster_addresses() == [("10.0.0.1", 7000), ("10.0.0.2", 7000)]
    assert settings.database.replica_urls == ("postgresql://orgbase_api:a@replica/orgbase",)
    for bad, variable in (
        ({**cluster, "ORGBASE_REDIS_DB": "2"}, "ORGBASE_REDIS_DB"),
        ({**BASE, "ORGBASE_REDIS_CLUSTER_NODES": "10.0.0.1:7000"}, "ORGBASE_REDIS_CLUSTER_NODES"),
        ({**cluster, "ORGBASE_REDIS_CLUSTER_NODES": "10.0.0.1"}, "ORGBASE_REDIS_CLUSTER_NODES"),
        ({**BASE, "ORGBASE_DATABASE_REPLICA_URLS": "mysql://x/y"}, "ORGBASE_DATABASE_REPLICA_URLS"),
    ):
        with pytest.raises(SettingsError) as caught:
            settings_from_env(bad)
        assert str(caught.value).startswith(variable), str(caught.value)


def test_the_public_url_follows_the_served_address_unless_set() -> None:
    served = settings_from_env({**BASE, "ORGBASE_HTTP_PORT": "9123"})
    assert served.tenancy.public_url == "http://127.0.0.1:9123"
    every_address = "0.0.0.0"  # noqa: S104 - the wildcard a container listens on
    wildcard = settings_from_env(
        {**BASE, "ORGBASE_HTTP_HOST": every_address, "ORGBASE_HTTP_PORT": "81"}
    )
    assert wildcard.tenancy.public_url == "http://127.0.0.1:81"
    public = "https://api.example.com"
    chosen = settings_from_env(
        {**BASE, "ORGBASE_HTTP_PORT": "9123", "ORGBASE_TENANCY_PUBLIC_URL": public}
    )
    assert chosen.tenancy.public_url == public
