"""A run's inputs as the launcher checks them before any work: some input matches, and no folder the run
searches is the folder its stems go to. Also which output folders every listing leaves out, so that a run
never reads what it or an earlier run wrote."""

from __future__ import annotations

from collections import Counter
from typing import Any

from stemforge.config.run import Config, ConfigError
from stemforge.pipeline.listing import describe_ignored, expand_input, expand_stemset, scanned_folder
from stemforge.pipeline.storage import filesystem, is_transient, protocol_of, redact_uri, retry


def excluded_roots(config: Config) -> tuple[str, ...]:
    """The folders a run writes under: output.uri, and the stems root when it writes stems. A directory or glob
    input leaves out whichever of them lies inside the folder it searches."""
    roots = [config.output.uri, config.output.stems_root if config.output.write_stems else None]
    return tuple(dict.fromkeys(root.rstrip("/") for root in roots if root))


def _first_source(uri: str, config: Config, ignored: Counter[str]) -> Any:
    """The first source an input lists (None: none), counting in ``ignored`` the files it skipped on the way."""
    ignored.clear()  # a retried listing counts afresh
    if config.mix is not None:
        return next(iter(expand_stemset(uri, config.mix.sources, config.storage_options)), None)
    return next(expand_input(uri, config.input.extensions, config.storage_options, excluded_roots(config), ignored,
                             lazy=True), None)


def _refuse_stems_in_input(config: Config) -> None:
    """A searched folder that is the stems root itself would list the run's own stems as inputs next time,
    and excluding the folder would exclude the inputs: refused."""
    stems = config.output.stems_root if config.output.write_stems else None
    if not stems:
        return
    stems_path = filesystem(stems, config.storage_options)[1].rstrip("/")
    for uri in config.input.uris:
        if protocol_of(uri) != protocol_of(stems):
            continue
        folder = retry(lambda u=uri: scanned_folder(u, config.storage_options), f"list {uri}", is_transient,
                       config.storage_options)
        if folder == stems_path:
            raise ConfigError(f"{redact_uri(uri)}: the stems would be written into the folder this input "
                              f"searches ({redact_uri(stems)}), and the next run would separate them again: "
                              "write them outside it, or into a folder inside it")


def check_inputs(config: Config) -> None:
    """Raises ConfigError (before any work) when no input matches, naming each input and why, or when the
    stems would go into a folder an input searches. Lists only as far as the first source, folder by folder."""
    _refuse_stems_in_input(config)
    why = []
    for uri in config.input.uris:
        ignored: Counter[str] = Counter()
        try:
            first = retry(lambda u=uri, i=ignored: _first_source(u, config, i), f"list {uri}", is_transient,
                          config.storage_options)
        except Exception as exc:  # noqa: BLE001 - any listing failure is a reason this input matched nothing
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            why.append(f"{redact_uri(uri)} ({reason.removeprefix(f'{uri}: ')})")
            continue
        if first is not None:
            return
        kinds = "stem set track" if config.mix is not None else "/".join(config.input.extensions) + " file"
        why.append(f"{redact_uri(uri)} (no {kinds} in it" + (f"; {describe_ignored(ignored)})" if ignored else ")"))
    raise ConfigError(f"no input matched {', '.join(why)}")
