// Below 992 px the theme shows the article header's "Toggle primary/secondary sidebar"
// buttons (sphinx-book-theme), but pydata-sphinx-theme opens its drawers only from the
// navbar's own buttons, which it hides at that width: a click on the visible button then
// shows a tooltip and nothing else. Hand the click on to the hidden button.
const narrow = window.matchMedia("(max-width: 991.98px)"); // the themes' breakpoint
document.addEventListener("DOMContentLoaded", () => {
  for (const side of ["primary", "secondary"]) {
    const opener = document.querySelector(`button.pst-navbar-icon.${side}-toggle`);
    if (!opener) continue;
    document.querySelectorAll(`.bd-header-article button.${side}-toggle`).forEach((button) => {
      if (button === opener) return;
      button.addEventListener("click", (event) => {
        if (!narrow.matches) return; // wide screens: the book theme collapses the sidebar
        event.preventDefault();
        event.stopImmediatePropagation();
        opener.click();
      }, true);
    });
  }
});
