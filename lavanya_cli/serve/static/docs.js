// A plain API reference drawn from /openapi.json: no CDN, no framework, nothing to fetch but
// the server's own schema. Any OpenAPI tool can read /openapi.json for more.
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function resolve(schema, spec) {
  while (schema && schema.$ref) {
    schema = schema.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node[key], spec);
  }
  return schema || {};
}

function typeOf(schema, spec) {
  schema = resolve(schema, spec);
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(" | ");
  if (schema.anyOf) return schema.anyOf.map((option) => typeOf(option, spec)).join(" | ");
  let type = schema.type || "object";
  if (schema.minimum !== undefined || schema.maximum !== undefined) {
    type += ` [${schema.minimum ?? ""}, ${schema.maximum ?? ""}]`;
  }
  return type;
}

function table(headings, rows) {
  const result = element("table");
  const head = result.createTHead().insertRow();
  for (const heading of headings) head.appendChild(element("th", heading));
  const body = result.createTBody();
  for (const row of rows) {
    const line = body.insertRow();
    row.forEach((cell, index) => line.appendChild(element("td", cell, index === 0 ? "path" : undefined)));
  }
  return result;
}

function fields(schema, spec) {
  schema = resolve(schema, spec);
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, property]) => [
    name + (required.has(name) ? " (required)" : ""),
    typeOf(property, spec),
    (resolve(property, spec).description || property.description || "") +
      (property.default !== undefined && property.default !== null ? ` Default: ${JSON.stringify(property.default)}.` : ""),
  ]);
}

function operation(path, method, op, spec) {
  const section = element("section", undefined, "operation");
  const title = element("h2");
  title.append(element("span", method.toUpperCase(), "method"), " ", element("span", path, "path"));
  section.appendChild(title);
  if (op.summary) section.appendChild(element("p", op.summary));
  if (op.description && op.description !== op.summary) section.appendChild(element("p", op.description, "note"));
  const parameters = (op.parameters || []).map((parameter) => [
    parameter.name + (parameter.required ? " (required)" : ""),
    typeOf(parameter.schema, spec),
    parameter.description || resolve(parameter.schema, spec).description || "",
  ]);
  if (parameters.length) {
    section.appendChild(element("h3", "Query parameters"));
    section.appendChild(table(["name", "type", "meaning"], parameters));
  }
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) {
    section.appendChild(element("h3", "JSON body"));
    section.appendChild(table(["field", "type", "meaning"], fields(body.schema, spec)));
  }
  const responses = Object.entries(op.responses || {}).map(([status, response]) => [
    status, Object.keys(response.content || {}).join(", "), response.description || "",
  ]);
  section.appendChild(element("h3", "Responses"));
  section.appendChild(table(["status", "content", "meaning"], responses));
  return section;
}

async function draw() {
  const main = document.getElementById("reference");
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (error) {
    main.replaceChildren(element("p", `Cannot load /openapi.json (${error.message}).`, "error"));
    return;
  }
  document.getElementById("title").textContent = `${spec.info.title} API ${spec.info.version}`;
  const sections = [element("p", spec.info.description || "")];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) sections.push(operation(path, method, op, spec));
  }
  main.replaceChildren(...sections);
}

document.addEventListener("DOMContentLoaded", draw);
