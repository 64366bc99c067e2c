// Starts Swagger UI on /docs (api/docs.py). A file, not an inline script, so that /docs has the same
// Content-Security-Policy as every other answer (script-src 'self'). The options are FastAPI's defaults;
// validatorUrl null: Swagger UI would otherwise ask a public validator about the description.
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
