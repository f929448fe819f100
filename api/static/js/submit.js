// The submit form, generated from each job type's JSON Schema (jobTypes.payloadSchema).

import { JOB_FIELDS } from "./api.js";
import { clear, h, json } from "./dom.js";

const SUBMIT = `mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { ${JOB_FIELDS} } ... on UserError { code message field } }
}`;

/** Resolve a local "$ref" and unwrap Optional (anyOf [X, null]); returns [schema, nullable]. */
function normalise(schema, root) {
  let nullable = false;
  let current = schema || {};
  for (let i = 0; i < 5; i++) {
    if (current.$ref && current.$ref.startsWith("#/")) {
      const target = current.$ref.slice(2).split("/").reduce((node, key) => node?.[key], root);
      current = { ...target, ...current, $ref: undefined };
      continue;
    }
    const options = current.anyOf || current.oneOf;
    if (options) {
      const real = options.filter((o) => o.type !== "null");
      nullable = nullable || real.length < options.length;
      if (real.length === 1) {
        current = { ...current, ...real[0], anyOf: undefined, oneOf: undefined };
        continue;
      }
    }
    break;
  }
  return [current, nullable];
}

const SCALARS = new Set(["string", "integer", "number", "boolean"]);

/** One input for one payload property; `read()` returns [present, value] or throws a message. */
export function fieldFor(name, raw, root, required) {
  const [schema, nullable] = normalise(raw, root);
  const id = `field-${name}`;
  const label = schema.title || (name.charAt(0).toUpperCase() + name.slice(1)).replaceAll("_", " ");
  const example = (schema.examples || [])[0];
  const hasDefault = schema.default !== undefined && schema.default !== null;
  const hint = schema.description || "";
  let control;
  let read;
  let kind = "json";
  if (Array.isArray(schema.enum)) kind = "enum";
  else if (SCALARS.has(schema.type)) kind = schema.type;
  else if (schema.type === "array" && Array.isArray(schema.prefixItems) && schema.prefixItems.every((p) => SCALARS.has(normalise(p, root)[0].type))) kind = "tuple";
  else if (schema.type === "array" && SCALARS.has(normalise(schema.items, root)[0].type)) kind = "list";

  const numeric = (text, type) => {
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) throw `“${text}” is not a number`;
    if (type === "integer" && !Number.isInteger(value)) throw `“${text}” is not a whole number`;
    return value;
  };
  const empty = () => {
    if (required) throw "required";
    return [false, undefined];
  };

  if (kind === "enum") {
    control = h("select", { id, name },
      !required || nullable ? h("option", { value: "" }, hasDefault ? `(default: ${schema.default})` : "(none)") : null,
      schema.enum.map((v) => h("option", { value: String(v), selected: required && v === schema.default }, String(v))));
    read = () => (control.value === "" ? empty() : [true, schema.enum.find((v) => String(v) === control.value)]);
  } else if (kind === "boolean") {
    control = h("input", { id, name, type: "checkbox", checked: schema.default === true });
    read = () => [true, control.checked];
  } else if (kind === "integer" || kind === "number") {
    control = h("input", {
      id, name, type: "number", step: kind === "integer" ? "1" : "any", inputmode: "decimal",
      min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum ?? schema.exclusiveMaximum,
      value: hasDefault ? String(schema.default) : "", placeholder: example !== undefined ? String(example) : "",
    });
    read = () => (control.value === "" ? empty() : [true, numeric(control.value, kind)]);
  } else if (kind === "string") {
    const long = !schema.maxLength || schema.maxLength > 200;
    control = long && !schema.format
      ? h("textarea", { id, name, rows: "2", placeholder: example !== undefined ? String(example).slice(0, 120) : "" })
      : h("input", { id, name, type: schema.format === "uri" ? "url" : "text", placeholder: example ?? "" });
    if (hasDefault) control.value = String(schema.default);
    read = () => (control.value === "" ? empty() : [true, control.value]);
  } else if (kind === "tuple") {
    const parts = schema.prefixItems.map((item, i) => {
      const [itemSchema] = normalise(item, root);
      return h("input", {
        type: "number", step: itemSchema.type === "integer" ? "1" : "any", "aria-label": `${label} ${i + 1}`,
        min: itemSchema.minimum, max: itemSchema.maximum,
        placeholder: Array.isArray(example) ? String(example[i]) : "", dataset: { type: itemSchema.type },
      });
    });
    parts[0].id = id;
    control = h("div", { class: "tuple" }, parts);
    read = () => {
      if (parts.every((p) => p.value === "")) return empty();
      return [true, parts.map((p) => numeric(p.value, p.dataset.type))];
    };
  } else if (kind === "list") {
    const [itemSchema] = normalise(schema.items, root);
    const isNumber = itemSchema.type === "number" || itemSchema.type === "integer";
    control = h("textarea", {
      id, name, rows: "3",
      placeholder: Array.isArray(example) ? example.join(", ") : isNumber ? "1, 2, 3" : "one per line",
    });
    read = () => {
      const text = control.value.trim();
      if (!text) return empty();
      const items = text.split(isNumber ? /[\s,;]+/ : /\n/).map((s) => s.trim()).filter(Boolean);
      return [true, items.map((s) => (isNumber ? numeric(s, itemSchema.type) : s))];
    };
  } else {
    control = h("textarea", { id, name, rows: "4", placeholder: example !== undefined ? json(example) : "JSON" });
    read = () => {
      const text = control.value.trim();
      if (!text) return empty();
      try {
        return [true, JSON.parse(text)];
      } catch {
        throw "not valid JSON";
      }
    };
  }
  if (required) (control.matches("input, select, textarea") ? control : control.querySelector("input")).setAttribute("aria-required", "true");
  const listHint = kind === "list" ? "Separate values with commas, spaces or new lines." : "";
  const error = h("div", { class: "field-error", hidden: true });
  const element = h("div", { class: "field", dataset: { field: name } },
    kind === "boolean"
      ? h("label", { for: id, class: "check" }, control, " ", label)
      : [h("label", { for: id }, label, required ? h("span", { class: "req", title: "required", "aria-hidden": "true" }, "*") : null), control],
    hint || listHint ? h("div", { class: "hint" }, [hint, listHint].filter(Boolean).join(" ")) : null,
    error);
  const fill = (value) => {
    if (value === undefined || value === null) return;
    if (kind === "boolean") control.checked = Boolean(value);
    else if (kind === "tuple") control.querySelectorAll("input").forEach((p, i) => { p.value = value[i] ?? ""; });
    else if (kind === "list") control.value = value.join(", ");
    else if (kind === "json") control.value = json(value);
    else control.value = String(value);
  };
  const setError = (message) => {
    error.textContent = message || "";
    error.hidden = !message;
    for (const input of element.querySelectorAll("input, select, textarea")) input.classList.toggle("invalid", Boolean(message));
  };
  return { name, element, read, fill, setError };
}

const OPTIONS = [
  ["priority", "Priority", "Higher runs first.", "0"],
  ["delaySeconds", "Delay (seconds)", "Wait before it may start.", "0"],
  ["maxAttempts", "Max attempts", "Default: the job type's.", ""],
  ["timeoutSeconds", "Timeout (seconds)", "Per attempt. Default: the job type's.", ""],
];

export class SubmitView {
  constructor(session, params) {
    this.session = session;
    const wanted = params.get("type");
    this.type = session.jobTypes.find((t) => t.name === wanted) || session.jobTypes[0] || null;
  }

  mount(root) {
    this.typeList = h("div", { class: "card type-list", role: "group", "aria-label": "Job type" });
    this.formHolder = h("div");
    root.append(h("section", { class: "view submit" },
      h("div", { class: "view-head" }, h("h1", {}, "Submit a job")),
      h("div", { class: "submit-layout" }, this.typeList, this.formHolder)));
    this.renderTypes();
    this.renderForm();
  }

  renderTypes() {
    clear(this.typeList, this.session.jobTypes.map((t) => h("button", {
      type: "button", "aria-pressed": String(t === this.type), dataset: { type: t.name },
      onclick: () => {
        this.type = t;
        history.replaceState(null, "", `#/submit?type=${encodeURIComponent(t.name)}`);
        this.renderTypes();
        this.renderForm();
      },
    }, h("span", { class: "name" }, t.name), h("span", { class: "desc", title: t.description }, t.description))));
  }

  renderForm() {
    const type = this.type;
    if (!type) {
      clear(this.formHolder, h("div", { class: "card empty" }, "This server has no job types."));
      return;
    }
    const schema = type.payloadSchema || {};
    const required = new Set(schema.required || []);
    this.fields = Object.entries(schema.properties || {}).map(([name, prop]) => fieldFor(name, prop, schema, required.has(name)));
    this.options = OPTIONS.map(([name, label, hint, value]) => {
      const input = h("input", { id: `option-${name}`, name, type: "number", step: "1", value, placeholder: name === "maxAttempts" ? String(type.maxAttempts) : name === "timeoutSeconds" ? String(type.timeoutSeconds) : "" });
      return { name, input, element: h("div", { class: "field" }, h("label", { for: input.id }, label), input, h("div", { class: "hint" }, hint)) };
    });
    this.keyInput = h("input", { id: "option-idempotencyKey", type: "text", placeholder: "optional" });
    this.errorEl = h("div", { class: "form-error", role: "alert", hidden: true });
    this.submitButton = h("button", { type: "submit", class: "btn btn-primary" }, "Submit job");
    const example = (schema.examples || [])[0];
    const form = h("form", { class: "card submit-form", "aria-label": `Submit ${type.name}`, novalidate: true },
      h("h2", {}, type.name),
      h("p", {}, type.description),
      this.fields.length ? this.fields.map((f) => f.element) : h("p", { class: "muted" }, "This job type takes no payload fields."),
      h("details", { class: "options" },
        h("summary", {}, "Options"),
        h("div", { class: "options-grid" }, this.options.map((o) => o.element),
          h("div", { class: "field" }, h("label", { for: "option-idempotencyKey" }, "Idempotency key"), this.keyInput,
            h("div", { class: "hint" }, "Same key within 24 h returns the first job.")))),
      this.errorEl,
      h("div", { class: "form-actions" },
        this.submitButton,
        example ? h("button", { type: "button", class: "btn", onclick: () => this.fillExample(example) }, "Fill example") : null,
        h("span", { class: "spacer" }),
        h("span", { class: "muted" }, `max ${type.maxAttempts} attempts · ${type.timeoutSeconds}s timeout`)));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    clear(this.formHolder, form);
  }

  fillExample(example) {
    for (const field of this.fields) field.fill(example[field.name]);
  }

  /** The SubmitJobInput the form describes, or null after showing what is wrong. */
  collect() {
    const payload = {};
    let ok = true;
    for (const field of this.fields) {
      try {
        const [present, value] = field.read();
        field.setError("");
        if (present) payload[field.name] = value;
      } catch (message) {
        field.setError(String(message));
        ok = false;
      }
    }
    const input = { type: this.type.name, payload };
    for (const option of this.options) {
      if (option.input.value !== "") input[option.name] = Number(option.input.value);
    }
    if (this.keyInput.value.trim()) input.idempotencyKey = this.keyInput.value.trim();
    return ok ? input : null;
  }

  showError(message) {
    this.errorEl.textContent = message;
    this.errorEl.hidden = !message;
  }

  async submit() {
    this.showError("");
    const input = this.collect();
    if (!input) return this.showError("Some fields need attention.");
    this.submitButton.disabled = true;
    try {
      const { submitJob: result } = await this.session.api(SUBMIT, { input });
      if (result.__typename === "UserError") {
        const field = this.fields.find((f) => result.field && (result.field === f.name || result.field.endsWith(`.${f.name}`)));
        if (field) field.setError(result.message);
        this.showError(`${result.code}: ${result.message}`);
        return;
      }
      this.session.toast(`Submitted ${result.type} job ${result.id.slice(-8)}.`, { link: ["View", `#/jobs/${result.id}`] });
      this.session.navigate(`#/?flash=${result.id}`);
    } catch (err) {
      this.showError(err.message);
    } finally {
      this.submitButton.disabled = false;
    }
  }
}
