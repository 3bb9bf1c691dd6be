"""`/docs`: the API reference as one self-contained HTML page, rendered from the OpenAPI document.

Server-side and static: no JavaScript, no fonts, no stylesheet or script from anywhere else, so it
works on an air-gapped machine (the response's Content-Security-Policy forbids any other load).
It is rendered once, when the app is created.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_URL = re.compile(r"https?://[^\s<>()&\"']+[^\s<>()&\"'.,;:]")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

STYLE = """
:root { --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg-code: #f3f5f7; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #fff; }
.page { display: grid; grid-template-columns: 17rem 1fr; max-width: 82rem; margin: 0 auto; }
nav { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow: auto;
      padding: 1.5rem 1rem; border-right: 1px solid var(--line); font-size: 13.5px; }
nav h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
         margin: 1.2rem 0 .3rem; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav li { margin: .15rem 0; }
nav a { color: var(--fg); text-decoration: none; }
nav a:hover { color: var(--accent); }
main { padding: 1.5rem 2.5rem 4rem; min-width: 0; }
h1 { margin: 0 0 .2rem; font-size: 28px; }
h2.tag { margin-top: 2.8rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
section.op { margin: 1.6rem 0 2.4rem; padding-top: .4rem; border-top: 1px solid var(--line); }
section.op h3 { font-size: 18px; margin: .6rem 0 .3rem; }
h4 { margin: 1.2rem 0 .4rem; font-size: 15px; }
h5 { margin: .8rem 0 .3rem; font-size: 13.5px; color: var(--muted); }
a { color: var(--accent); }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--bg-code); padding: .05rem .3rem; border-radius: 3px; }
pre { background: var(--bg-code); padding: .7rem .9rem; border-radius: 5px; overflow: auto;
      max-height: 28rem; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .6rem; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem; border-bottom: 1px solid var(--line); }
td p { margin: 0 0 .3rem; } td p:last-child { margin-bottom: 0; }
td:first-child code { white-space: nowrap; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.method { display: inline-block; min-width: 3.6rem; padding: .05rem .45rem; margin-right: .4rem;
          border-radius: 4px; color: #fff; font: 700 12px/1.7 ui-monospace, monospace;
          text-align: center; text-transform: uppercase; vertical-align: 2px; }
.get { background: #2f7d4f; } .post { background: #1f5fa8; } .put, .patch { background: #9a6a00; }
.delete { background: #b03a2e; }
.muted { color: var(--muted); }
.status { font-weight: 700; }
.status.ok { color: #2f7d4f; } .status.err { color: #b03a2e; }
details > summary { cursor: pointer; color: var(--muted); }
@media (max-width: 60rem) { .page { display: block; } nav { position: static; max-height: none;
  border-right: 0; border-bottom: 1px solid var(--line); } main { padding: 1rem; } }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _inline(text: str) -> str:
    """Escaped text with `code`, **bold** and bare URLs as links (the only markup used)."""
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2:
            out.append(f"<code>{_e(part)}</code>")
            continue
        escaped = _BOLD.sub(r"<strong>\1</strong>", _e(part))
        out.append(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))
    return "".join(out)


def _prose(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{_inline(' '.join(p.split()))}</p>" for p in paragraphs)


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


class _Renderer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        components = document.get("components", {})
        self.schemas: Mapping[str, Any] = components.get("schemas", {})
        self.headers: Mapping[str, Any] = components.get("headers", {})
        self.security: Mapping[str, Any] = components.get("securitySchemes", {})

    # --- schemas ---------------------------------------------------------------------------------

    def _resolve(self, schema: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
        if "$ref" in schema:
            name = _schema_name(schema["$ref"])
            return name, self.schemas.get(name, {})
        return None, schema

    def type_label(self, schema: Mapping[str, Any]) -> str:
        if "$ref" in schema:
            name = _schema_name(schema["$ref"])
            return f'<a href="#{_anchor("schema", name)}">{_e(name)}</a>'
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                return " | ".join(self.type_label(s) for s in schema[combinator])
        if "allOf" in schema:
            return " &amp; ".join(self.type_label(s) for s in schema["allOf"])
        if "enum" in schema:
            return " | ".join(f"<code>{_e(json.dumps(v))}</code>" for v in schema["enum"])
        if "const" in schema:
            return f"<code>{_e(json.dumps(schema['const']))}</code>"
        kind = schema.get("type")
        if kind == "array":
            items = schema.get("items")
            return f"array of {self.type_label(items)}" if items else "array"
        if kind == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                return f"object of {self.type_label(extra)}"
            return "object"
        if isinstance(kind, list):
            return " | ".join(_e(k) for k in kind)
        if kind:
            fmt = schema.get("format")
            return _e(kind) + (f" <span class='muted'>({_e(fmt)})</span>" if fmt else "")
        return "any"

    def _notes(self, schema: Mapping[str, Any]) -> str:
        parts = []
        if schema.get("description"):
            parts.append(_prose(schema["description"]))
        if "examples" in schema:
            shown = ", ".join(
                f"<code>{_e(json.dumps(v, ensure_ascii=False))}</code>" for v in schema["examples"]
            )
            parts.append(f"<p class='muted'>Example: {shown}</p>")
        return "".join(parts)

    def properties_table(self, schema: Mapping[str, Any]) -> str:
        properties: Mapping[str, Any] = schema.get("properties", {})
        if not properties:
            return ""
        required = set(schema.get("required", ()))
        rows = []
        for name, prop in properties.items():
            if name in required:
                presence = "required"
            elif "default" in prop:
                presence = f"optional, default <code>{_e(json.dumps(prop['default']))}</code>"
            else:
                presence = "optional"
            rows.append(
                f"<tr><td><code>{_e(name)}</code></td><td>{self.type_label(prop)}</td>"
                f"<td>{presence}</td><td>{self._notes(prop)}</td></tr>"
            )
        note = ""
        if schema.get("additionalProperties") is False:
            note = "<p class='muted'>No other fields are accepted.</p>"
        return (
            "<table><thead><tr><th>Field</th><th>Type</th><th></th><th>Description</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}"
        )

    def schema_block(self, schema: Mapping[str, Any], inline_fields: bool) -> str:
        name, resolved = self._resolve(schema)
        out = [f"<p>Schema: {self.type_label(schema)}</p>"]
        if name is None and schema.get("description"):
            out.append(_prose(schema["description"]))
        if inline_fields and resolved.get("type") == "object":
            out.append(self.properties_table(resolved))
        return "".join(out)

    @staticmethod
    def example_block(example: Any) -> str:
        text = example if isinstance(example, str) else json.dumps(example, indent=2, ensure_ascii=False)
        return f"<h5>Example</h5><pre><code>{_e(text)}</code></pre>"

    def content_block(self, content: Mapping[str, Any], inline_fields: bool) -> str:
        out = []
        for media_type, media in content.items():
            out.append(f"<h5>{_e(media_type)}</h5>")
            if "schema" in media:
                out.append(self.schema_block(media["schema"], inline_fields))
            if "example" in media:
                out.append(self.example_block(media["example"]))
        return "".join(out)

    # --- operations ------------------------------------------------------------------------------

    def security_text(self, requirements: list[Mapping[str, Any]] | None) -> str:
        if not requirements:
            return "none"
        names = [name for requirement in requirements for name in requirement]
        labels = []
        for name in names:
            scheme = self.security.get(name, {})
            fmt = scheme.get("bearerFormat")
            labels.append(
                f'<a href="#{_anchor("auth", name)}">{_e(name)}</a>'
                + (f" (<code>Authorization: Bearer {_e(fmt)}</code>)" if fmt else "")
            )
        return " or ".join(labels)

    def parameters_table(self, parameters: list[Mapping[str, Any]]) -> str:
        rows = []
        for p in parameters:
            example = (
                f"<p class='muted'>Example: <code>{_e(p['example'])}</code></p>" if "example" in p else ""
            )
            presence = "required" if p.get("required") else "optional"
            rows.append(
                f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
                f"<td>{self.type_label(p.get('schema', {}))}</td><td>{presence}</td>"
                f"<td>{_prose(p.get('description', ''))}{example}</td></tr>"
            )
        return (
            "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th></th>"
            f"<th>Description</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def headers_table(self, headers: Mapping[str, Any]) -> str:
        rows = []
        for name, header in headers.items():
            if "$ref" in header:
                header = self.headers.get(_schema_name(header["$ref"]), {})
            rows.append(
                f"<tr><td><code>{_e(name)}</code></td><td>{self.type_label(header.get('schema', {}))}</td>"
                f"<td>{_prose(header.get('description', ''))}</td></tr>"
            )
        return (
            "<h5>Headers</h5><table><thead><tr><th>Header</th><th>Type</th><th>Description</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def response_block(self, status: str, response: Mapping[str, Any]) -> str:
        success = status.startswith(("1", "2", "3"))
        head = (
            f"<h4><span class='status {'ok' if success else 'err'}'>{_e(status)}</span> "
            f"{_inline(response.get('description', ''))}</h4>"
        )
        body = ""
        if response.get("headers"):
            body += self.headers_table(response["headers"])
        if response.get("content"):
            body += self.content_block(response["content"], inline_fields=success)
        if success or not body:
            return head + body
        label = "Body and headers" if response.get("headers") else "Body"
        return f"{head}<details><summary>{label}</summary>{body}</details>"

    def operation(self, path: str, method: str, op: Mapping[str, Any]) -> str:
        out = [
            f"<section class='op' id='{_anchor('op', op.get('operationId', method + path))}'>",
            f"<h3><span class='method {method}'>{method.upper()}</span><code>{_e(path)}</code></h3>",
            f"<p><strong>{_inline(op.get('summary', ''))}</strong></p>",
        ]
        if op.get("description"):
            out.append(_prose(op["description"]))
        if op.get("externalDocs"):
            docs = op["externalDocs"]
            out.append(
                f"<p class='muted'>See also: <a href=\"{_e(docs['url'])}\">"
                f"{_e(docs.get('description', docs['url']))}</a></p>"
            )
        out.append(f"<p>Authentication: {self.security_text(op.get('security'))}</p>")
        if op.get("parameters"):
            out.append(self.parameters_table(op["parameters"]))
        if op.get("requestBody"):
            body = op["requestBody"]
            out.append("<h4>Request body</h4>")
            if body.get("description"):
                out.append(_prose(body["description"]))
            out.append(self.content_block(body.get("content", {}), inline_fields=True))
        out.append("<h3 class='muted' style='font-size:15px'>Responses</h3>")
        for status, response in op.get("responses", {}).items():
            out.append(self.response_block(status, response))
        out.append("</section>")
        return "".join(out)

    def _operations_by_tag(self) -> dict[str, list[tuple[str, str, Mapping[str, Any]]]]:
        groups: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {
            t["name"]: [] for t in self.doc.get("tags", [])
        }
        for path, item in self.doc.get("paths", {}).items():
            for method in _METHODS:
                if method in item:
                    tag = (item[method].get("tags") or ["Other"])[0]
                    groups.setdefault(tag, []).append((path, method, item[method]))
        return {tag: ops for tag, ops in groups.items() if ops}

    def access_table(self) -> str:
        """The RBAC table (`x-keyrail-rbac`): one row per permission, a mark per role allowed."""
        rows = self.doc.get("x-keyrail-rbac", [])
        if not rows:
            return ""
        roles = ("owner", "project_admin", "developer", "self")
        head = "".join(f"<th>{_e(role)}</th>" for role in roles)
        body = "".join(
            f"<tr><td><code>{_e(row['permission'])}</code></td><td>{_e(row['action'])}</td>"
            + "".join(f"<td>{'✓' if row.get(role) else ''}</td>" for role in roles)
            + f"<td>{_e(row['scope'])}</td></tr>"
            for row in rows
        )
        return (
            "<h2 class='tag' id='access-control'>Access control</h2>"
            "<p>Who may call each admin operation. A project role counts in the project the target "
            "belongs to (scope <code>project</code>), in a project of the integration's "
            "<code>project_scope</code> (<code>integration</code>), or anywhere, for lists and queries "
            "answered for the caller's own projects (<code>mine</code>); <code>org</code> is for owners; "
            "<code>self</code> is the user named in the path.</p>"
            f"<table><thead><tr><th>Permission</th><th>Action</th>{head}<th>Scope</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    # --- page ------------------------------------------------------------------------------------

    def page(self) -> str:
        info = self.doc.get("info", {})
        title = f"{info.get('title', 'API')} API reference"
        groups = self._operations_by_tag()
        tag_text = {t["name"]: t.get("description", "") for t in self.doc.get("tags", [])}

        nav = [
            "<nav><strong>Contents</strong>",
            "<h2>Overview</h2><ul>",
            "<li><a href='#overview'>Introduction</a></li>",
            "<li><a href='#authentication'>Authentication</a></li>",
            *(
                ["<li><a href='#access-control'>Access control</a></li>"]
                if self.doc.get("x-keyrail-rbac")
                else []
            ),
            "</ul>",
        ]
        for tag, ops in groups.items():
            nav.append(f"<h2>{_e(tag)}</h2><ul>")
            for path, method, op in ops:
                nav.append(
                    f"<li><a href='#{_anchor('op', op.get('operationId', method + path))}'>"
                    f"<span class='muted'>{method.upper()}</span> {_e(path)}</a></li>"
                )
            nav.append("</ul>")
        nav.append("<h2>Schemas</h2><ul>")
        nav += [f"<li><a href='#{_anchor('schema', n)}'>{_e(n)}</a></li>" for n in self.schemas]
        nav.append("</ul></nav>")

        main = [
            "<main>",
            f"<h1 id='overview'>{_e(title)}</h1>",
            f"<p class='muted'>Version {_e(info.get('version', ''))} · "
            f"OpenAPI {_e(self.doc.get('openapi', ''))} · "
            "machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
        ]
        if info.get("summary"):
            main.append(f"<p><strong>{_inline(info['summary'])}</strong></p>")
        main.append(_prose(info.get("description", "")))
        main.append("<h2 class='tag' id='authentication'>Authentication</h2>")
        for name, scheme in self.security.items():
            main.append(
                f"<h4 id='{_anchor('auth', name)}'><code>{_e(name)}</code> "
                f"<span class='muted'>{_e(scheme.get('type', ''))} {_e(scheme.get('scheme', ''))}</span></h4>"
                f"{_prose(scheme.get('description', ''))}"
            )
        main.append(self.access_table())
        for tag, ops in groups.items():
            main.append(
                f"<h2 class='tag' id='{_anchor('tag', tag)}'>{_e(tag)}</h2>{_prose(tag_text.get(tag, ''))}"
            )
            main += [self.operation(path, method, op) for path, method, op in ops]
        main.append("<h2 class='tag' id='schemas'>Schemas</h2>")
        for name, schema in self.schemas.items():
            main.append(
                f"<section class='schema' id='{_anchor('schema', name)}'><h3>{_e(name)}</h3>"
                f"{_prose(schema.get('description', ''))}"
            )
            if schema.get("type") == "object":
                main.append(self.properties_table(schema) or "<p>An object.</p>")
            else:
                main.append(f"<p>Type: {self.type_label(schema)}</p>")
            main.append("</section>")
        main.append("</main>")

        return (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><div class='page'>{''.join(nav)}{''.join(main)}</div></body></html>\n"
        )


def render_html(document: Mapping[str, Any]) -> str:
    """The whole API reference page for an OpenAPI 3.1 document."""
    return _Renderer(document).page()
