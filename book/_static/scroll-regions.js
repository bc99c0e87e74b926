// A table wider than the column scrolls sideways inside its box (great_tables' wrapper, the
// audit's scroll box). A keyboard user can scroll such a box only if it can take the focus,
// so a box that scrolls is made a named, focusable region (named after its table's title),
// as pydata-sphinx-theme does for its own wide tables and code blocks. Checked again when
// a box, its table or the window changes size: a box that no longer scrolls leaves the tab
// order.
const SCROLL_BOXES = ".cell_output div[id][style*='overflow-x:auto'], .audit-scroll";
function markScrollRegions() {
  document.querySelectorAll(SCROLL_BOXES).forEach((box) => {
    const scrolls = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
    if (scrolls && !box.hasAttribute("tabindex")) {
      const table = box.querySelector("table");
      const title = table && table.getAttribute("aria-labelledby");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.dataset.scrollRegion = "";
      if (title && document.getElementById(title)) box.setAttribute("aria-labelledby", title);
      else box.setAttribute("aria-label", "Scrollable table");
    } else if (!scrolls && box.dataset.scrollRegion !== undefined) {
      for (const name of ["tabindex", "role", "aria-labelledby", "aria-label", "data-scroll-region"]) {
        box.removeAttribute(name);
      }
    }
  });
}
// A box may start to scroll after the page is parsed (a web font or an image widens its
// table), with no window resize: each box and its table are watched for size changes.
function watchScrollRegions() {
  markScrollRegions();
  if (!("ResizeObserver" in window)) return;
  const observer = new ResizeObserver(markScrollRegions);
  document.querySelectorAll(SCROLL_BOXES).forEach((box) => {
    observer.observe(box);
    const table = box.querySelector("table");
    if (table) observer.observe(table);
  });
}
document.addEventListener("DOMContentLoaded", watchScrollRegions);
window.addEventListener("load", markScrollRegions);
window.addEventListener("resize", markScrollRegions);
