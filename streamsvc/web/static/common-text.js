// Comparing Vietnamese names the way people type them: without accents, in any case.

/** Lower case, no Vietnamese accents: "Đồng" and "dong" compare equal. */
export function fold(text) {
  return text
    .replace(/[đĐ]/g, "d")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim();
}
