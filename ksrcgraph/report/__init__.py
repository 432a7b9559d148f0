"""Stage 9 — report: results as text for people, JSON for machines, DOT/SVG/HTML for drawings.

In: what the layers below found — ``query.Path`` lists and caller/callee trees with the
``CallGraph`` they came from, ``refstack.socket_paths.SocketPaths``, ``diff.PathDiff``, statistics, the
cache's contents. Out: strings, deterministic (sorted, stable ids), so golden files and version diffs
mean something. JSON documents carry ``schema_version``; their fields are documented in README.md
("JSON output").

 * ``docs``    — the pieces every JSON document shares: kernel, edges, evidence steps, paths;
 * ``paths``   — call paths and their replays, as text and JSON;
 * ``graphs``  — caller/callee trees and the whole graph, as text and JSON;
 * ``dot``     — drawings: DOT for Graphviz, SVG and an HTML page through Graphviz's ``dot``;
 * ``changes`` — what ``diff`` found, as text, JSON and Markdown;
 * ``tables``  — statistics, socket configurations, kernel sources and the cache.
 * ``versions`` — many versions at once: what ``index`` did, and ``matrix`` (text, JSON, Markdown, HTML).
"""
