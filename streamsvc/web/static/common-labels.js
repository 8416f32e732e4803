// The pages' words: every label comes from streamsvc/web/labels.py, embedded as JSON in the page
// (<script type="application/json" id="labels">), so no page carries text of its own.

const LABELS = JSON.parse(document.getElementById("labels").textContent);

/**
 * The label helpers of one page's section ("organizer", "checkin"): its own labels first, then
 * the common ones. `t(key, {name: value})` fills `{name}` placeholders; an unknown key shows as
 * itself, so a missing label is visible rather than blank.
 */
export function labelsFor(section) {
  const own = LABELS[section] || {};
  const common = LABELS.common || {};

  function t(key, vars = {}) {
    const text = own[key] ?? common[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }

  const hasLabel = (key) => key in own || key in common;

  /** Fill every element marked data-l (its text), data-l-placeholder, -title, -aria-label. */
  function applyLabels(root = document) {
    for (const node of root.querySelectorAll("[data-l]")) node.textContent = t(node.dataset.l);
    for (const node of root.querySelectorAll("[data-l-placeholder]")) {
      node.placeholder = t(node.dataset.lPlaceholder);
    }
    for (const node of root.querySelectorAll("[data-l-title]")) node.title = t(node.dataset.lTitle);
    for (const node of root.querySelectorAll("[data-l-aria-label]")) {
      node.setAttribute("aria-label", t(node.dataset.lAriaLabel));
    }
  }

  return { t, hasLabel, applyLabels };
}
