"""The database schema read from real repositories holding each kind of source: SQL migrations with
ALTER TABLE (several dialects, migration order, down migrations), SQLAlchemy, Django, Laravel and
Prisma — and, over HTTP, from a project's checkout."""
import textwrap

import pytest

from gitrepo import make_repo, origin_url
from helpers import assert_problem
from runner.knowledge.schema import build_schema


def _repo(tmp_path, files):
    return make_repo(tmp_path / "repo", {name: textwrap.dedent(text) for name, text in files.items()})


def _tables(schema):
    return {table["name"]: table for table in schema["tables"]}


def col(name, type_, nullable=False, default=None, unique=False):
    return {"name": name, "type": type_, "nullable": nullable, "default": default, "unique": unique}


def fk(columns, table, references, on_delete=None, name=None):
    return {"name": name, "columns": columns, "references_table": table, "references_columns": references,
            "on_delete": on_delete}


SQL = {
    "db/migrations/V1__create.sql": """\
        -- users and their posts
        CREATE TABLE users (
            id SERIAL PRIMARY KEY,
            email VARCHAR(255) NOT NULL UNIQUE,
            name TEXT DEFAULT 'anonymous',
            legacy_flag BOOLEAN
        );

        CREATE TABLE posts (
            id BIGINT NOT NULL,
            author_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            title VARCHAR(200) NOT NULL,
            body TEXT,
            PRIMARY KEY (id)
        );
        /* CREATE TABLE ghosts (id INT); */
        """,
    "db/migrations/V2__tags.sql": """\
        CREATE TABLE tags (id INTEGER PRIMARY KEY, label VARCHAR(50) NOT NULL);
        CREATE TABLE post_tags (
            post_id BIGINT NOT NULL,
            tag_id INTEGER NOT NULL,
            CONSTRAINT pk_post_tags PRIMARY KEY (post_id, tag_id),
            CONSTRAINT fk_post FOREIGN KEY (post_id) REFERENCES posts (id),
            CONSTRAINT fk_tag FOREIGN KEY (tag_id) REFERENCES tags ON DELETE SET NULL
        );
        INSERT INTO tags (id, label) VALUES (1, 'news');
        """,
    # V3 runs before V10 (numbers, not characters, order migrations): the drop in V10 removes it.
    "db/migrations/V3__scratch.sql": "CREATE TABLE scratch (id INT);\n",
    "db/migrations/V10__alter.sql": """\
        ALTER TABLE users ADD COLUMN created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
        ALTER TABLE users DROP COLUMN legacy_flag;
        ALTER TABLE users RENAME COLUMN name TO display_name;
        ALTER TABLE posts ALTER COLUMN body SET NOT NULL;
        ALTER TABLE post_tags DROP CONSTRAINT fk_tag;
        DROP TABLE IF EXISTS scratch;
        """,
    # Never applied: an undo migration, and the down half of a dbmate migration.
    "db/migrations/V10__alter.down.sql": "DROP TABLE users;\n",
    "db/sessions/20240101000000_sessions.sql": """\
        -- migrate:up
        CREATE TABLE sessions (token TEXT PRIMARY KEY, user_id INT REFERENCES users);
        -- migrate:down
        DROP TABLE sessions;
        """,
    # MySQL spelling: backticks, AUTO_INCREMENT, KEY, table options.
    "db/zz_mysql/audit.sql": """\
        CREATE TABLE `audit_log` (
          `id` int(11) unsigned NOT NULL AUTO_INCREMENT,
          `user_id` int(11) DEFAULT NULL,
          `action` varchar(64) NOT NULL,
          PRIMARY KEY (`id`),
          KEY `ix_user` (`user_id`),
          CONSTRAINT `fk_audit_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
        """,
    "db/seed.sql": "INSERT INTO users (email) VALUES ('a@example.com');\n",
}


def test_sql_migrations_are_applied_in_migration_order_with_their_alters(tmp_path):
    schema = build_schema(_repo(tmp_path, SQL))
    tables = _tables(schema)
    assert sorted(tables) == ["audit_log", "post_tags", "posts", "sessions", "tags", "users"]

    users = tables["users"]
    assert users["columns"] == [
        col("id", "SERIAL"),
        col("email", "VARCHAR(255)", unique=True),
        col("display_name", "TEXT", nullable=True, default="'anonymous'"),
        col("created_at", "TIMESTAMP", default="CURRENT_TIMESTAMP"),
    ]
    assert users["primary_key"] == ["id"] and users["foreign_keys"] == []
    assert users["source"] == "db/migrations/V1__create.sql"

    posts = tables["posts"]
    assert posts["columns"] == [
        col("id", "BIGINT"),
        col("author_id", "INT"),
        col("title", "VARCHAR(200)"),
        col("body", "TEXT"),  # SET NOT NULL in V10
    ]
    assert posts["primary_key"] == ["id"]
    assert posts["foreign_keys"] == [fk(["author_id"], "users", ["id"], "CASCADE")]

    post_tags = tables["post_tags"]
    assert post_tags["primary_key"] == ["post_id", "tag_id"]
    # fk_tag was dropped by name in V10; fk_post stays.
    assert post_tags["foreign_keys"] == [fk(["post_id"], "posts", ["id"], name="fk_post")]

    # `REFERENCES users` without columns means the users primary key.
    assert tables["sessions"]["foreign_keys"] == [fk(["user_id"], "users", ["id"])]
    assert tables["sessions"]["primary_key"] == ["token"]

    audit = tables["audit_log"]
    assert audit["columns"] == [
        col("id", "INT(11) UNSIGNED"),
        col("user_id", "INT(11)", nullable=True, default="NULL"),
        col("action", "VARCHAR(64)"),
    ]
    assert audit["primary_key"] == ["id"]
    assert audit["foreign_keys"] == [fk(["user_id"], "users", ["id"], name="fk_audit_user")]

    assert schema["sources"] == [
        {"path": "db/migrations/V1__create.sql", "kind": "sql"},
        {"path": "db/migrations/V2__tags.sql", "kind": "sql"},
        {"path": "db/migrations/V3__scratch.sql", "kind": "sql"},
        {"path": "db/migrations/V10__alter.sql", "kind": "sql"},
        {"path": "db/sessions/20240101000000_sessions.sql", "kind": "sql"},
        {"path": "db/zz_mysql/audit.sql", "kind": "sql"},
    ]
    assert schema["reason"] is None
    assert {"from_table": "posts", "from_columns": ["author_id"], "to_table": "users", "to_columns": ["id"],
            "kind": "many-to-one"} in schema["relations"]


def test_an_unreadable_statement_skips_only_itself(tmp_path):
    schema = build_schema(_repo(tmp_path, {
        "migrations/001.sql": """\
            CREATE TABLE a (id INT PRIMARY KEY);
            CREATE FUNCTION touch() RETURNS trigger AS $$ BEGIN NEW.x := 1; RETURN NEW; END; $$ LANGUAGE plpgsql;
            THIS IS NOT SQL AT ALL;
            CREATE TABLE b (id INT PRIMARY KEY, a_id INT REFERENCES a (id));
            CREATE TABLE `c` (`id` int(11) unsigned NOT NULL AUTO_INCREMENT, PRIMARY KEY (`id`)) ENGINE=InnoDB;
            """,
    }))
    tables = _tables(schema)
    assert sorted(tables) == ["a", "b", "c"]
    assert tables["b"]["foreign_keys"] == [fk(["a_id"], "a", ["id"])]
    # Each statement in the dialect that reads it: MySQL's, for the backticks.
    assert tables["c"]["columns"] == [col("id", "INT(11) UNSIGNED")]


SQLALCHEMY = {
    "app/__init__.py": "",
    "app/models.py": '''\
        from datetime import datetime
        from decimal import Decimal
        from typing import Optional

        import sqlalchemy as sa
        from sqlalchemy import Column, ForeignKey, Integer, String, Table
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

        from app.mixins import TimestampMixin


        class Base(DeclarativeBase):
            pass


        class Author(TimestampMixin, Base):
            __tablename__ = "authors"

            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(100))
            nickname: Mapped[Optional[str]]
            email = Column(String(254), unique=True, nullable=False)
            books: Mapped[list["Book"]] = relationship(back_populates="author")

            def __repr__(self):
                return self.name


        class Book(Base):
            __tablename__ = "books"
            __table_args__ = (sa.UniqueConstraint("isbn_13"),)

            id = Column(Integer, primary_key=True)
            isbn = Column("isbn_13", String(13))
            author_id: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"))
            price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2), default=0)
            author: Mapped[Author] = relationship(back_populates="books")


        class Ebook(Book):
            """Joined inheritance: a table of its own, keyed by the book's id."""
            __tablename__ = "ebooks"

            id: Mapped[int] = mapped_column(ForeignKey(Book.id), primary_key=True)
            url: Mapped[str | None] = mapped_column(sa.Text)


        book_tags = Table(
            "book_tags",
            Base.metadata,
            Column("book_id", ForeignKey("books.id"), primary_key=True),
            Column("tag", String(30), primary_key=True),
        )
        ''',
    "app/mixins.py": '''\
        import sqlalchemy as sa
        from sqlalchemy.orm import Mapped, mapped_column


        class TimestampMixin:
            created_at: Mapped[datetime] = mapped_column(sa.DateTime, server_default=sa.func.now())
        ''',
}


def test_sqlalchemy_models_mixins_and_core_tables(tmp_path):
    schema = build_schema(_repo(tmp_path, SQLALCHEMY))
    tables = _tables(schema)
    assert sorted(tables) == ["authors", "book_tags", "books", "ebooks"]
    assert tables["authors"]["columns"] == [
        col("id", "Integer"),
        col("name", "String(100)"),
        col("nickname", "String", nullable=True),
        col("email", "String(254)", unique=True),
        col("created_at", "DateTime", default="func.now()"),  # the mixin's, after the class's own
    ]
    assert tables["authors"]["primary_key"] == ["id"]
    books = tables["books"]
    assert books["columns"] == [
        col("id", "Integer"),
        col("isbn_13", "String(13)", nullable=True, unique=True),
        col("author_id", "Integer"),
        col("price", "Numeric(10, 2)", nullable=True, default="0"),
    ]
    assert books["foreign_keys"] == [fk(["author_id"], "authors", ["id"], "CASCADE")]
    assert tables["ebooks"]["columns"] == [col("id", "Integer"), col("url", "Text", nullable=True)]
    assert tables["ebooks"]["foreign_keys"] == [fk(["id"], "books", ["id"])]
    assert tables["book_tags"]["columns"] == [col("book_id", "Integer"), col("tag", "String(30)")]
    assert tables["book_tags"]["primary_key"] == ["book_id", "tag"]
    assert schema["sources"] == [{"path": "app/models.py", "kind": "sqlalchemy"}]
    one_to_one = [r for r in schema["relations"] if r["from_table"] == "ebooks"]
    assert one_to_one == [{"from_table": "ebooks", "from_columns": ["id"], "to_table": "books", "to_columns": ["id"],
                           "kind": "one-to-one"}]


DJANGO = {
    "mysite/settings.py": 'DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"\nINSTALLED_APPS = ["shop"]\n',
    "shop/__init__.py": "",
    "shop/models.py": '''\
        from django.conf import settings
        from django.db import models


        class Timestamped(models.Model):
            created = models.DateTimeField(auto_now_add=True)

            class Meta:
                abstract = True


        class Category(models.Model):
            name = models.CharField(max_length=100, unique=True)
            parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)

            def __str__(self):
                return self.name


        class Product(Timestamped):
            sku = models.CharField(primary_key=True, max_length=32)
            title = models.CharField(max_length=200)
            price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
            category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
            owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_column="owner")
            tags = models.ManyToManyField("Tag")

            class Meta:
                db_table = "products"


        class Tag(models.Model):
            label = models.SlugField()


        class DigitalProduct(Product):
            url = models.URLField(null=True)


        class ProductProxy(Product):
            class Meta:
                proxy = True
        ''',
}


def test_django_models_fields_inheritance_and_join_tables(tmp_path):
    schema = build_schema(_repo(tmp_path, DJANGO))
    tables = _tables(schema)
    assert sorted(tables) == ["products", "products_tags", "shop_category", "shop_digitalproduct", "shop_tag"]
    assert tables["shop_category"]["columns"] == [
        col("id", "BigAutoField"),  # settings.DEFAULT_AUTO_FIELD
        col("name", "CharField(max_length=100)", unique=True),
        col("parent_id", "ForeignKey", nullable=True),
    ]
    assert tables["shop_category"]["foreign_keys"] == [fk(["parent_id"], "shop_category", ["id"], "SET NULL")]
    products = tables["products"]
    assert products["columns"] == [
        col("created", "DateTimeField"),  # from the abstract base
        col("sku", "CharField(max_length=32)"),
        col("title", "CharField(max_length=200)"),
        col("price", "DecimalField(max_digits=10, decimal_places=2)", default="0"),
        col("category_id", "ForeignKey"),
        col("owner", "ForeignKey"),
    ]
    assert products["primary_key"] == ["sku"]
    assert products["foreign_keys"] == [
        fk(["category_id"], "shop_category", ["id"], "PROTECT"),
        fk(["owner"], "auth_user", ["id"], "CASCADE"),
    ]
    join = tables["products_tags"]
    assert join["columns"] == [col("id", "BigAutoField"), col("product_id", "ForeignKey"), col("tag_id", "ForeignKey")]
    assert join["foreign_keys"] == [
        fk(["product_id"], "products", ["sku"], "CASCADE"),
        fk(["tag_id"], "shop_tag", ["id"], "CASCADE"),
    ]
    child = tables["shop_digitalproduct"]
    assert child["columns"] == [
        col("product_ptr_id", "OneToOneField", unique=True),
        col("url", "URLField", nullable=True),
    ]
    assert child["primary_key"] == ["product_ptr_id"]
    assert child["foreign_keys"] == [fk(["product_ptr_id"], "products", ["sku"], "CASCADE")]
    assert schema["sources"] == [{"path": "shop/models.py", "kind": "django"}]


LARAVEL = {
    "database/migrations/2014_10_12_000000_create_users_table.php": """\
        <?php

        use Illuminate\\Database\\Migrations\\Migration;
        use Illuminate\\Database\\Schema\\Blueprint;
        use Illuminate\\Support\\Facades\\Schema;

        return new class extends Migration
        {
            public function up(): void
            {
                Schema::create('users', function (Blueprint $table) {
                    $table->id();
                    $table->string('name');
                    $table->string('email')->unique();
                    $table->timestamp('email_verified_at')->nullable();
                    $table->string('password', 100);
                    $table->rememberToken();
                    $table->timestamps();
                });
            }

            public function down(): void
            {
                Schema::dropIfExists('users');
            }
        };
        """,
    "database/migrations/2024_01_01_000001_create_posts_table.php": """\
        <?php

        return new class extends Migration
        {
            public function up(): void
            {
                Schema::create('posts', function (Blueprint $table) {
                    $table->id();
                    $table->foreignId('user_id')->constrained()->cascadeOnDelete();
                    $table->string('title', 200);
                    $table->text('body')->nullable();
                    $table->enum('status', ['draft', 'published'])->default('draft');
                    $table->decimal('rating', 3, 1)->nullable();
                    $table->unsignedBigInteger('category_id');
                    $table->foreign('category_id')->references('id')->on('categories')->onDelete('set null');
                    // $table->string('ghost');
                    /* $table->string('ghost2'); */
                    $table->softDeletes();
                });
            }
        };
        """,
    "database/migrations/2024_02_01_000000_alter_posts_table.php": """\
        <?php

        return new class extends Migration
        {
            public function up(): void
            {
                Schema::table('posts', function (Blueprint $t) {
                    $t->dropColumn(['rating']);
                    $t->renameColumn('body', 'content');
                    $t->boolean('featured')->default(false);
                    $t->dropForeign(['category_id']);
                });
                Schema::rename('posts', 'articles');
            }

            public function down(): void
            {
                Schema::rename('articles', 'posts');
                Schema::table('posts', function (Blueprint $t) {
                    $t->dropColumn('featured');
                });
            }
        };
        """,
}


def test_laravel_migrations_up_methods_in_order(tmp_path):
    schema = build_schema(_repo(tmp_path, LARAVEL))
    tables = _tables(schema)
    assert sorted(tables) == ["articles", "users"]
    assert tables["users"]["columns"] == [
        col("id", "id"),
        col("name", "string"),
        col("email", "string", unique=True),
        col("email_verified_at", "timestamp", nullable=True),
        col("password", "string(100)"),
        col("remember_token", "string(100)", nullable=True),
        col("created_at", "timestamp", nullable=True),
        col("updated_at", "timestamp", nullable=True),
    ]
    assert tables["users"]["primary_key"] == ["id"]
    articles = tables["articles"]
    assert articles["columns"] == [
        col("id", "id"),
        col("user_id", "foreignId"),
        col("title", "string(200)"),
        col("content", "text", nullable=True),
        col("status", "enum('draft', 'published')", default="'draft'"),
        col("category_id", "unsignedBigInteger"),
        col("deleted_at", "timestamp", nullable=True),
        col("featured", "boolean", default="false"),
    ]
    # constrained() guesses the table from the column name; the explicit category key was dropped.
    assert articles["foreign_keys"] == [fk(["user_id"], "users", ["id"], "CASCADE", name="posts_user_id_foreign")]
    assert articles["source"] == "database/migrations/2024_01_01_000001_create_posts_table.php"
    assert [s["kind"] for s in schema["sources"]] == ["laravel"] * 3


PRISMA = {
    "prisma/schema.prisma": """\
        // Prisma schema
        datasource db {
          provider = "postgresql"
          url      = env("DATABASE_URL")
        }

        enum Role {
          USER
          ADMIN
        }

        model User {
          id        Int      @id @default(autoincrement())
          email     String   @unique
          name      String?  @map("display_name")
          role      Role     @default(USER)
          posts     Post[]
          profile   Profile?
          createdAt DateTime @default(now()) @map("created_at")

          @@map("users")
        }

        model Profile {
          id     Int    @id @default(autoincrement())
          bio    String @db.Text
          user   User   @relation(fields: [userId], references: [id], onDelete: Cascade)
          userId Int    @unique @map("user_id")
        }

        model Post {
          id       Int      @id @default(autoincrement())
          title    String   // "the headline" @unique is a comment, not an attribute
          tags     String[]
          author   User?    @relation(fields: [authorId], references: [id])
          authorId Int?
        }

        model PostLike {
          postId Int
          userId Int

          @@id([postId, userId])
        }
        """,
}


def test_prisma_models_relations_and_maps(tmp_path):
    schema = build_schema(_repo(tmp_path, PRISMA))
    tables = _tables(schema)
    assert sorted(tables) == ["Post", "PostLike", "Profile", "users"]
    assert tables["users"]["columns"] == [
        col("id", "Int", default="autoincrement()"),
        col("email", "String", unique=True),
        col("display_name", "String", nullable=True),
        col("role", "Role", default="USER"),
        col("created_at", "DateTime", default="now()"),
    ]
    assert tables["Profile"]["columns"] == [
        col("id", "Int", default="autoincrement()"),
        col("bio", "String"),
        col("user_id", "Int", unique=True),
    ]
    assert tables["Profile"]["foreign_keys"] == [fk(["user_id"], "users", ["id"], "CASCADE")]
    assert tables["Post"]["columns"] == [
        col("id", "Int", default="autoincrement()"),
        col("title", "String"),
        col("tags", "String[]"),
        col("authorId", "Int", nullable=True),
    ]
    assert tables["Post"]["foreign_keys"] == [fk(["authorId"], "users", ["id"])]
    assert tables["PostLike"]["primary_key"] == ["postId", "userId"]
    kinds = {(r["from_table"], r["to_table"]): r["kind"] for r in schema["relations"]}
    assert kinds == {("Profile", "users"): "one-to-one", ("Post", "users"): "many-to-one"}


def test_a_repository_without_schema_sources_has_an_empty_schema_with_a_reason(tmp_path):
    schema = build_schema(_repo(tmp_path, {"README.md": "# hi\n", "src/app.js": "console.log(1)\n",
                                           "data/seed.sql": "INSERT INTO t VALUES (1);\n"}))
    assert schema["tables"] == [] and schema["relations"] == [] and schema["sources"] == []
    assert "No schema source was found" in schema["reason"]


def test_when_two_kinds_define_a_table_the_migrations_win(tmp_path):
    files = {**SQL, **PRISMA}
    schema = build_schema(_repo(tmp_path, files))
    tables = _tables(schema)
    assert tables["users"]["source"] == "db/migrations/V1__create.sql"
    assert "Profile" in tables  # the other Prisma tables still count
    assert [s["kind"] for s in schema["sources"]][-1] == "prisma"


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def project(user_api, run_jobs, tmp_path):
    def make(files):
        url = origin_url(tmp_path / f"origin-{len(files)}", {n: textwrap.dedent(t) for n, t in files.items()})
        response = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": url})
        assert response.status_code == 202, response.get_json()
        run_jobs()
        return response.get_json()["id"]

    return make


def test_the_schema_endpoint_reads_the_projects_checkout(user_api, project):
    project_id = project(LARAVEL)
    response = user_api.get(f"/api/projects/{project_id}/schema")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    articles = next(t for t in body["tables"] if t["name"] == "articles")
    assert articles["primaryKey"] == ["id"]
    assert articles["foreignKeys"] == [{"name": "posts_user_id_foreign", "columns": ["user_id"], "referencesTable": "users",
                                        "referencesColumns": ["id"], "onDelete": "CASCADE"}]
    assert {"name": "featured", "type": "boolean", "nullable": False, "default": "false", "unique": False} in articles["columns"]
    assert body["relations"] == [{"fromTable": "articles", "fromColumns": ["user_id"], "toTable": "users",
                                  "toColumns": ["id"], "kind": "many-to-one"}]
    assert body["reason"] is None and len(body["commit"]) == 40


def test_a_project_without_schema_sources_answers_an_empty_schema_not_an_error(user_api, project):
    project_id = project({"README.md": "# nothing here\n"})
    body = user_api.get(f"/api/projects/{project_id}/schema").get_json()
    assert body["tables"] == [] and body["sources"] == []
    assert body["reason"].startswith("No schema source was found")


def test_schema_of_a_project_not_cloned_yet_is_a_409_and_of_anothers_a_404(user_api, make_user, login, tmp_path):
    url = origin_url(tmp_path / "origin")
    project_id = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": url}).get_json()["id"]
    body = assert_problem(user_api.get(f"/api/projects/{project_id}/schema"), 409, "project-not-ready")
    assert body["currentStatus"] == "pending" and body["projectId"] == project_id
    _, email = make_user()
    assert_problem(login(email).get(f"/api/projects/{project_id}/schema"), 404)
