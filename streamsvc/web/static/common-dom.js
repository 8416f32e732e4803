// Small DOM helpers shared by the organizer's pages and the check-in page.

export const $ = (id) => document.getElementById(id);

/** A new element: el("td", {className: "n", dataset: {unit: "C1"}}, child, "text", ...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}
