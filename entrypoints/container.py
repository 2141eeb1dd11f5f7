"""The composition root: every adapter and use case is wired here and nowhere else."""

from __future__ import annotations

import secrets

import argon2
from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.common_passwords import CommonPasswordList, NoCommonPasswords
from adapters.prometheus import MeasuredPostsCache, Metrics
from adapters.tokens import JwtTokenService
from application.callers import ResolveCaller
from application.limits import LoginThrottle, RateLimit
from application.ports import PostsCache
from application.posts import AddPost, DeletePost, GetPosts
from application.precedence import ShortFirst
from application.sessions import EndAllSessions, EndSession, ListSessions, RefreshSession, SessionStarter
from application.users import (
    ChangePassword,
    CommonPasswords,
    DeleteAccount,
    GetAccount,
    LogIn,
    PasswordPolicy,
    RegisterUser,
)
from domain.posts import PostQuota
from entrypoints.bootstrap import MEMORY_URL, bootstrap
from entrypoints.http.pages import PageCursors
from entrypoints.http.use_cases import UseCases
from entrypoints.metrics import multiprocess
from entrypoints.settings import Settings, jwt_secret, parse_login_limits, parse_rates
from entrypoints.tracing import open_tracing

# How long the cache may vouch for a session the store showed alive. Sessions ended through the
# service are refused at once; a user or session removed from the database behind the service's back
# is refused on every route once this has passed since the last lookup.
CALLER_RECHECK_SECONDS = 5.0


def signing_key(settings: Settings) -> str:
    if settings.database_url == MEMORY_URL:
        # Users of memory:// do not outlive the process, so neither may their tokens: a token
        # kept from an earlier run would name whoever now has the same id.
        return secrets.token_urlsafe(48)
    return jwt_secret(settings)


def common_passwords(settings: Settings) -> CommonPasswords:
    return CommonPasswordList() if settings.refuse_common_passwords else NoCommonPasswords()


def post_quota(settings: Settings) -> PostQuota:
    return PostQuota(settings.max_posts_per_user, settings.max_bytes_per_user)


def open_metrics(settings: Settings) -> Metrics | None:
    return None if settings.metrics == "off" else Metrics(multiprocess=multiprocess())


def measured(cache: PostsCache, metrics: Metrics | None) -> PostsCache:
    return cache if metrics is None else MeasuredPostsCache(cache, metrics)


def argon2_hasher(settings: Settings) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    argon2_parameters = providers.Singleton(argon2_hasher, settings)
    # Opened here, closed by close() below.
    infrastructure = providers.Singleton(bootstrap, settings, clock, argon2_parameters)
    uow = infrastructure.provided.uow
    posts_cache = infrastructure.provided.posts_cache
    password_hasher = infrastructure.provided.password_hasher
    limiter = infrastructure.provided.limiter
    readiness = infrastructure.provided.probes
    metrics = providers.Singleton(open_metrics, settings)
    tracing = providers.Singleton(open_tracing)
    cache = providers.Singleton(measured, posts_cache, metrics)

    secret = providers.Singleton(signing_key, settings)
    tokens = providers.Singleton(
        JwtTokenService,
        secret=secret,
        ttl_seconds=settings.provided.token_ttl_seconds,
        clock=clock,
    )

    resolve_caller = providers.Singleton(
        ResolveCaller, tokens, uow, cache, clock, recheck_seconds=CALLER_RECHECK_SECONDS
    )
    session_starter = providers.Singleton(
        SessionStarter, tokens, clock, refresh_ttl_seconds=settings.provided.refresh_ttl_seconds
    )
    password_policy = providers.Singleton(PasswordPolicy, providers.Singleton(common_passwords, settings))
    login_throttle = providers.Singleton(
        LoginThrottle, limiter, providers.Callable(parse_login_limits, settings.provided.login_limits)
    )
    # Refreshes (issue 10's route) are limited per client address like registrations.
    refresh_limit = providers.Singleton(
        RateLimit, limiter, "refresh", providers.Callable(parse_rates, settings.provided.refresh_limits)
    )

    register_user = providers.Singleton(
        RegisterUser,
        uow,
        password_hasher,
        session_starter,
        clock,
        password_policy,
        providers.Singleton(
            RateLimit, limiter, "register", providers.Callable(parse_rates, settings.provided.register_limits)
        ),
    )
    log_in = providers.Singleton(LogIn, uow, password_hasher, session_starter, login_throttle)
    refresh_session = providers.Singleton(RefreshSession, uow, session_starter, cache, refresh_limit)
    list_sessions = providers.Singleton(ListSessions, uow, clock)
    end_session = providers.Singleton(EndSession, uow, cache, clock)
    end_all_sessions = providers.Singleton(EndAllSessions, uow, cache, clock)
    get_account = providers.Singleton(GetAccount, uow)
    change_password = providers.Singleton(
        ChangePassword, uow, password_hasher, cache, clock, password_policy, login_throttle
    )
    delete_account = providers.Singleton(DeleteAccount, uow, password_hasher, cache, login_throttle)
    add_post = providers.Singleton(
        AddPost,
        uow,
        cache,
        max_bytes=settings.provided.max_post_bytes,
        per_user=providers.Singleton(
            RateLimit, limiter, "post", providers.Callable(parse_rates, settings.provided.post_limits)
        ),
        quota=providers.Callable(post_quota, settings),
    )
    # Shared by the request log, which counts the requests under way, and the long answers that
    # give way to them.
    short_first = providers.Singleton(ShortFirst)
    get_posts = providers.Singleton(
        GetPosts,
        uow,
        cache,
        max_entry_bytes=settings.provided.cache_max_entry_bytes,
        short_first=short_first,
    )
    delete_post = providers.Singleton(DeletePost, uow, cache)

    use_cases = providers.Singleton(
        UseCases,
        resolve_caller=resolve_caller,
        register_user=register_user,
        log_in=log_in,
        add_post=add_post,
        get_posts=get_posts,
        delete_post=delete_post,
        refresh_session=refresh_session,
        list_sessions=list_sessions,
        end_session=end_session,
        end_all_sessions=end_all_sessions,
        get_account=get_account,
        change_password=change_password,
        delete_account=delete_account,
    )
    page_cursors = providers.Singleton(PageCursors, secret)


async def close(container: Container) -> None:
    """Releases what the container opened: pools, connections, threads."""
    await container.infrastructure().aclose()
