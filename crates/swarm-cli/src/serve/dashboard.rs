//! The dashboard: one page compiled into the binary (no CDN, no build step), kept as a few
//! plain files — markup, styles and one script per view — put together once.

use std::sync::LazyLock;

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let script = [
        include_str!("dashboard/app.js"),
        include_str!("dashboard/graph.js"),
        include_str!("dashboard/timeline.js"),
        include_str!("dashboard/models.js"),
        include_str!("dashboard/logs.js"),
    ]
    .join("\n");
    include_str!("dashboard/index.html")
        .replace("/*STYLE*/", include_str!("dashboard/style.css"))
        .replace("/*SCRIPT*/", &script)
});

/// The page, with its styles and scripts inline.
pub fn page() -> &'static str {
    &PAGE
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_is_whole_and_loads_nothing_from_elsewhere() {
        let page = super::page();
        assert!(!page.contains("/*STYLE*/") && !page.contains("/*SCRIPT*/"));
        // The one address in it is SVG's namespace name, never fetched.
        let page = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="), "no CDN");
        for view in ["function drawGraph", "function drawTimeline", "function drawModels", "function openLog"]
        {
            assert!(page.contains(view), "{view}");
        }
    }
}
