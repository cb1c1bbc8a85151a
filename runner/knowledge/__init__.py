"""Knowledge about a project's code: which files count, the search index, retrieval for runs, the
project map and managed docs. Domain code only; HTTP lives in `blueprints/knowledge`."""
