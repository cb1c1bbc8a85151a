"""The project map of a real multi-language repository — symbols and imports exact, imports resolved
to repository paths by each language's rules — and over HTTP: paging, filtering, the per-commit
cache, and what a changed repository does to it."""
import os
import textwrap

import pytest

from gitrepo import commit, make_repo, origin_url
from helpers import assert_problem
from runner.knowledge.map import build_map

FILES = {
    "README.md": "# Shop\n\nNo code here.",
    "app/__init__.py": "from .config import Settings\n",
    "app/config.py": '''\
        """Settings."""
        import os
        from dataclasses import dataclass

        DEFAULT_PORT = 8000
        log = None


        @dataclass
        class Settings:
            port: int = DEFAULT_PORT

            def url(self):
                return f"http://localhost:{self.port}"


        async def load():
            return Settings(int(os.environ.get("PORT", DEFAULT_PORT)))
        ''',
    "app/server.py": """\
        from . import config
        from .config import Settings, load
        from app import helpers
        import app.missing
        import requests


        def main():
            import json
            return json.dumps(Settings().url())
        """,
    "app/helpers.py": "def slug(text):\n    return text.lower()\n",
    "scripts/run.py": "import tool\nfrom app.server import main\n",
    "scripts/tool.py": "X = 1\n",
    "web/src/index.ts": """\
        import { render } from "./render";
        import type { Props } from './types';
        import * as util from "./util.js";
        import React from 'react';
        export { helper } from "./helpers/index";
        // import { ghost } from "./ghost";
        const lazy = () => import("./lazy");
        const fs = require("fs");
        /*
        export function commentedOut() {}
        */
        export interface AppProps { name: string }
        export type Mode = "a" | "b";
        export enum Color { Red, Green }
        export default class App {}
        export async function start(root: Element): Promise<void> {
          render(root);
        }
        export const VERSION = "1.0";
        export const handler = async (req) => req;
        function inner() {}
          function indented() {}
        """,
    "web/src/render.tsx": "export function render(el) {}\n",
    "web/src/types.ts": "export type Props = {};\n",
    "web/src/util.ts": "export const x = 1;\n",
    "web/src/helpers/index.js": "module.exports = {};\n",
    "web/src/lazy.js": "export default 1;\n",
    "go.mod": "module example.com/shop\n\ngo 1.22\n",
    "cmd/server/main.go": """\
        package main

        import (
        	"fmt"
        	"example.com/shop/internal/store"
        	st "example.com/shop/internal/store/sql"
        )

        // func ghost() {}

        func main() {
        	fmt.Println(store.New(), st.Open())
        }
        """,
    "internal/store/store.go": """\
        package store

        import "errors"

        const Limit = 10

        var ErrMissing = errors.New("missing")

        type (
        	ID    int64
        	Store struct {
        		items map[ID]string
        	}
        )

        type Reader interface {
        	Get(id ID) (string, error)
        }

        func New() *Store { return &Store{} }

        func (s *Store) Get(id ID) (string, error) {
        	return s.items[id], nil
        }

        func Map[T any](xs []T) []T { return xs }
        """,
    "internal/store/sql/sql.go": "package sql\n\nfunc Open() int { return 1 }\n",
    "java/src/main/java/com/acme/App.java": """\
        package com.acme;

        import java.util.List;
        import com.acme.model.User;
        import static com.acme.util.Strings.slug;
        import com.acme.model.*;

        @SuppressWarnings("unused")
        public final class App {
            class Inner {}
        }

        interface Greeter {}
        """,
    "java/src/main/java/com/acme/model/User.java": "package com.acme.model;\n\npublic record User(String name) {}\n",
    "java/src/main/java/com/acme/util/Strings.java": "package com.acme.util;\n\npublic class Strings {\n    public static String slug(String s) { return s; }\n}\n",
    "composer.json": '{"autoload": {"psr-4": {"App\\\\": "app/"}}}\n',
    "app/Http/Controller.php": """\
        <?php
        namespace App\\Http;

        use App\\Models\\User;
        use App\\Models\\{Post, Comment as Remark};
        use Illuminate\\Support\\Str;
        require_once __DIR__ . '/helpers.php';

        # class Ghost {}
        abstract class Controller
        {
            use Traits;
        }

        function helper() {}
        """,
    "app/Http/helpers.php": "<?php\nconst VERSION = '1';\n",
    "app/Models/User.php": "<?php\nnamespace App\\Models;\n\nfinal class User {}\n",
    "app/Models/Post.php": "<?php\nnamespace App\\Models;\n\ntrait Post {}\n",
    "lib/shop.rb": """\
        require "json"
        require_relative "shop/cart"
        require 'shop/missing'

        # class Ghost
        module Shop
          class Cart; end
        end

        class Order
          TAX = 0.2
        end

        def checkout(cart) = cart
        MAX_ITEMS = 10
        """,
    "lib/shop/cart.rb": "module Shop\n  class Cart\n  end\nend\n",
    "Cargo.toml": '[package]\nname = "engine"\n',
    "src/lib.rs": """\
        //! Engine.
        pub mod db;
        mod util;
        use crate::db::Pool;
        use std::collections::HashMap;
        use self::util::{helper, Other};
        // fn ghost() {}

        pub struct Engine<'a> {
            name: &'a str,
        }

        pub(crate) enum State { Idle }

        pub trait Run {}

        impl Engine<'_> {
            pub fn new() -> Self { todo!() }
        }

        pub async fn start() {}
        const LIMIT: u32 = 3;
        macro_rules! log { () => {} }
        """,
    "src/db.rs": "pub struct Pool;\nuse super::util::helper;\n",
    "src/util/mod.rs": "pub fn helper() {}\npub struct Other;\n",
}


def sym(name, kind, line):
    return {"name": name, "kind": kind, "line": line}


def imp(module, path=None):
    return {"module": module, "path": path}


EXPECTED = {
    "README.md": ("markdown", 3, [], []),
    "app/config.py": (
        "python", 18,
        [sym("DEFAULT_PORT", "constant", 5), sym("log", "variable", 6), sym("Settings", "class", 10), sym("load", "function", 17)],
        [imp("os"), imp("dataclasses")],
    ),
    "app/server.py": (
        "python", 10, [sym("main", "function", 8)],
        [imp(".config", "app/config.py"), imp("app.helpers", "app/helpers.py"), imp("app.missing"), imp("requests"), imp("json")],
    ),
    "scripts/run.py": ("python", 2, [], [imp("tool", "scripts/tool.py"), imp("app.server", "app/server.py")]),
    "web/src/index.ts": (
        "typescript", 22,
        [sym("lazy", "function", 7), sym("fs", "variable", 8), sym("AppProps", "interface", 12), sym("Mode", "type", 13),
         sym("Color", "enum", 14), sym("App", "class", 15), sym("start", "function", 16), sym("VERSION", "variable", 19),
         sym("handler", "function", 20), sym("inner", "function", 21)],
        [imp("./render", "web/src/render.tsx"), imp("./types", "web/src/types.ts"), imp("./util.js", "web/src/util.ts"),
         imp("react"), imp("./helpers/index", "web/src/helpers/index.js"), imp("./lazy", "web/src/lazy.js"), imp("fs")],
    ),
    "cmd/server/main.go": (
        "go", 13, [sym("main", "function", 11)],
        [imp("fmt"), imp("example.com/shop/internal/store", "internal/store"),
         imp("example.com/shop/internal/store/sql", "internal/store/sql")],
    ),
    "internal/store/store.go": (
        "go", 26,
        [sym("Limit", "constant", 5), sym("ErrMissing", "variable", 7), sym("ID", "type", 10), sym("Store", "struct", 11),
         sym("Reader", "interface", 16), sym("New", "function", 20), sym("Store.Get", "method", 22), sym("Map", "function", 26)],
        [imp("errors")],
    ),
    "java/src/main/java/com/acme/App.java": (
        "java", 13, [sym("App", "class", 9), sym("Greeter", "interface", 13)],
        [imp("java.util.List"), imp("com.acme.model.User", "java/src/main/java/com/acme/model/User.java"),
         imp("com.acme.util.Strings.slug", "java/src/main/java/com/acme/util/Strings.java"),
         imp("com.acme.model.*", "java/src/main/java/com/acme/model")],
    ),
    "java/src/main/java/com/acme/model/User.java": ("java", 3, [sym("User", "record", 3)], []),
    "app/Http/Controller.php": (
        "php", 15, [sym("Controller", "class", 10), sym("helper", "function", 15)],
        [imp("App\\Models\\User", "app/Models/User.php"), imp("App\\Models\\Post", "app/Models/Post.php"),
         imp("App\\Models\\Comment"), imp("Illuminate\\Support\\Str"), imp("helpers.php", "app/Http/helpers.php")],
    ),
    "app/Models/Post.php": ("php", 4, [sym("Post", "trait", 4)], []),
    "lib/shop.rb": (
        "ruby", 15, [sym("Shop", "module", 6), sym("Order", "class", 10), sym("checkout", "function", 14), sym("MAX_ITEMS", "constant", 15)],
        [imp("json"), imp("shop/cart", "lib/shop/cart.rb"), imp("shop/missing")],
    ),
    "src/lib.rs": (
        "rust", 23,
        [sym("db", "module", 2), sym("util", "module", 3), sym("Engine", "struct", 9), sym("State", "enum", 13),
         sym("Run", "trait", 15), sym("start", "function", 21), sym("LIMIT", "constant", 22), sym("log", "macro", 23)],
        [imp("db", "src/db.rs"), imp("util", "src/util/mod.rs"), imp("crate::db::Pool", "src/db.rs"),
         imp("std::collections::HashMap"), imp("self::util::{helper,Other}", "src/util/mod.rs")],
    ),
    "src/db.rs": ("rust", 2, [sym("Pool", "struct", 1)], [imp("super::util::helper", "src/util/mod.rs")]),
}


def _files():
    return {name: textwrap.dedent(text) for name, text in FILES.items()}


@pytest.fixture
def shop(tmp_path):
    return make_repo(tmp_path / "shop", _files())


def test_every_file_is_a_row_with_its_exact_symbols_and_imports(shop):
    rows = {row["path"]: row for row in build_map(shop)}
    assert sorted(rows) == sorted(FILES)
    for path, (language, lines, symbols, imports) in EXPECTED.items():
        row = rows[path]
        assert (row["language"], row["lines"]) == (language, lines), path
        assert row["symbols"] == symbols, path
        assert row["imports"] == imports, path
    assert [row["path"] for row in build_map(shop)] == sorted(FILES)  # sorted by path


def test_untracked_files_count_and_ignored_ones_do_not(shop):
    (shop / ".gitignore").write_text("build_output/\n")
    (shop / "build_output").mkdir()
    (shop / "build_output" / "gen.py").write_text("def generated(): pass\n")
    (shop / "app" / "new.py").write_text("from app.helpers import slug\n")
    rows = {row["path"]: row for row in build_map(shop)}
    assert "build_output/gen.py" not in rows
    assert rows["app/new.py"]["imports"] == [imp("app.helpers", "app/helpers.py")]


def test_the_managed_docs_are_not_part_of_the_map(shop):
    commit(shop, {"docs/ai/PROJECT_MAP.md": "# map\n", "CHANGELOG_AI.md": "# log\n", "docs/guide.md": "# guide\n"})
    paths = {row["path"] for row in build_map(shop)}
    assert "docs/guide.md" in paths
    assert "docs/ai/PROJECT_MAP.md" not in paths and "CHANGELOG_AI.md" not in paths


def test_a_python_file_that_does_not_parse_is_a_row_without_symbols(tmp_path):
    repo = make_repo(tmp_path / "r", {"old.py": "print 'python 2'\n", "ok.py": "def f(): pass\n"})
    rows = {row["path"]: row for row in build_map(repo)}
    assert rows["old.py"] == {"path": "old.py", "language": "python", "lines": 1, "symbols": [], "imports": []}
    assert rows["ok.py"]["symbols"] == [sym("f", "function", 1)]


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def shop_project(user_api, run_jobs, tmp_path):
    origin = tmp_path / "origin"
    url = origin_url(origin, _files())
    created = user_api.post("/api/projects", json={"name": "shop", "repositoryUrl": url}).get_json()
    run_jobs()
    assert user_api.get(f"/api/projects/{created['id']}").get_json()["status"] == "ready"
    return created["id"], origin


def _all_pages(api, url):
    rows, cursor, metas = [], None, []
    while True:
        response = api.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        rows += body["data"]
        metas.append(body["meta"])
        cursor = body["meta"]["nextCursor"]
        if cursor is None:
            return rows, metas


def test_the_map_endpoint_pages_through_every_row_of_the_checkout(app, user_api, shop_project):
    project_id, origin = shop_project
    rows, metas = _all_pages(user_api, f"/api/projects/{project_id}/map?limit=7")
    assert [row["path"] for row in rows] == sorted(FILES)
    assert len(metas) == -(-len(FILES) // 7)
    assert {meta["total"] for meta in metas} == {len(FILES)}
    assert {meta["commit"] for meta in metas} == {_head(origin)}
    by_path = {row["path"]: row for row in rows}
    language, lines, symbols, imports = EXPECTED["internal/store/store.go"]
    assert by_path["internal/store/store.go"] == {
        "path": "internal/store/store.go", "language": language, "lines": lines, "symbols": symbols, "imports": imports,
    }


def test_the_map_can_be_narrowed_to_a_folder(user_api, shop_project):
    project_id, _ = shop_project
    body = user_api.get(f"/api/projects/{project_id}/map?path=web/src/").get_json()
    assert [row["path"] for row in body["data"]] == sorted(p for p in FILES if p.startswith("web/src/"))
    assert body["meta"]["total"] == 6 and body["meta"]["nextCursor"] is None


def test_repeated_gets_use_the_cached_map_until_the_checkout_moves(app, user_api, shop_project, run_jobs):
    from runner import projects

    project_id, origin = shop_project
    first = user_api.get(f"/api/projects/{project_id}/map?limit=200").get_json()
    with app.app_context():
        cached = projects.project_dir(project_id) / "knowledge" / "map.json"
    stored = os.stat(cached)
    second = user_api.get(f"/api/projects/{project_id}/map?limit=200").get_json()
    assert second == first
    # Not recomputed: a recomputation replaces the file (a new inode).
    assert (os.stat(cached).st_ino, os.stat(cached).st_mtime_ns) == (stored.st_ino, stored.st_mtime_ns)

    page = user_api.get(f"/api/projects/{project_id}/map?limit=5").get_json()
    new_head = commit(origin, {"app/extra.py": "from app.config import load\n\n\ndef extra():\n    return load()\n"})
    assert user_api.post(f"/api/projects/{project_id}/pull").status_code == 202
    run_jobs()
    body = user_api.get(f"/api/projects/{project_id}/map?path=app/extra.py").get_json()
    assert body["meta"]["commit"] == new_head
    assert body["data"] == [{
        "path": "app/extra.py", "language": "python", "lines": 5,
        "symbols": [sym("extra", "function", 4)], "imports": [imp("app.config", "app/config.py")],
    }]
    # A cursor of the map as it was would skip or repeat rows now: refused, not followed.
    stale = user_api.get(f"/api/projects/{project_id}/map?limit=5&cursor={page['meta']['nextCursor']}")
    assert_problem(stale, 400, "invalid-cursor")


def test_a_tampered_cursor_is_a_400(user_api, shop_project):
    project_id, _ = shop_project
    page = user_api.get(f"/api/projects/{project_id}/map?limit=5").get_json()
    assert_problem(user_api.get(f"/api/projects/{project_id}/map?cursor={page['meta']['nextCursor']}x"), 400, "invalid-cursor")


def test_the_map_of_a_project_that_is_not_cloned_is_a_409(user_api, tmp_path):
    url = origin_url(tmp_path / "o")
    project_id = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": url}).get_json()["id"]
    body = assert_problem(user_api.get(f"/api/projects/{project_id}/map"), 409, "project-not-ready")
    assert body["currentStatus"] == "pending"


def _head(repo):
    from gitrepo import head

    return head(repo)
