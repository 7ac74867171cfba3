// Custos dev GraphiQL: every asset from this server, the header editor prefilled with a
// dev token minted by the server, the schema fetched with those headers, and nothing
// about headers kept in the browser's storage.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("custos-graphiql-config").textContent);
  var initialHeaders = config.headers || {};

  // Storage kept in this page only (gone on reload), so no token lands in localStorage.
  function pageStorage() {
    var items = {};
    return {
      getItem: function (key) {
        return Object.prototype.hasOwnProperty.call(items, key) ? items[key] : null;
      },
      setItem: function (key, value) {
        items[key] = String(value);
      },
      removeItem: function (key) {
        delete items[key];
      },
      clear: function () {
        items = {};
      },
      get length() {
        return Object.keys(items).length;
      },
    };
  }

  var post = GraphiQL.createFetcher({ url: config.endpoint });

  // The first schema fetch may leave before the header editor exists: it always carries
  // the prefilled headers (the editor's own win). Queries send the editor's headers only.
  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    if (params && params.operationName === "IntrospectionQuery") {
      headers = Object.assign({}, initialHeaders, headers);
    }
    return post(params, Object.assign({}, options, { headers: headers }));
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.query,
      headers: JSON.stringify(initialHeaders, null, 2),
      defaultHeaders: JSON.stringify(initialHeaders, null, 2),
      shouldPersistHeaders: false,
      storage: pageStorage(),
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      visiblePlugin: GraphiQL.React.DOC_EXPLORER_PLUGIN,
      inputValueDeprecation: true,
    })
  );
})();
