"""Drawing 1D signals: stacked strips, mean power spectra, and sampling cost against the length (claim audio)."""

FAMILIES = (("real", "k"), ("ar", "tab:red"), ("diffusion", "tab:blue"))


def draw_strip(ax, signals, color, title, labels=None):
    """Signals stacked with a vertical offset, each labelled by its class when given."""
    gap = 2.2 * max(max(abs(v) for v in s) for s in signals)
    for i, s in enumerate(signals):
        ax.plot([v - i * gap for v in s], color=color, lw=1)
        if labels is not None:
            ax.text(-0.5, -i * gap, f"class {labels[i]}", fontsize=7, va="bottom")
    ax.set_title(title, fontsize=8)
    ax.set_yticks([])


def draw_spectra(ax, spectra, title):
    """Mean power spectra in dB against frequency, with each family's distance to real in the legend."""
    for family, color in FAMILIES:
        db = spectra[f"{family}_db"]
        label = "real" if family == "real" else f"{family}: {spectra[family]:.1f} dB"
        ax.plot([i / (2 * (len(db) - 1)) for i in range(len(db))], db, color=color, lw=1.2, label=label)
    ax.set(xlabel="frequency (cycles per sample)", ylabel="mean power (dB)")
    ax.set_title(f"{title}; real vs real {spectra['floor']:.1f} dB", fontsize=8)
    ax.legend(fontsize=7)


def draw_timing(ax_time, ax_calls, times, nfe, batch, threads):
    """Seconds per batch and sequential network calls against the length, both families, log-log."""
    lengths = [r["length"] for r in times]
    for family, color in FAMILIES[1:]:
        ax_time.loglog(lengths, [r[f"{family}_seconds"] for r in times], "o-", color=color, label=family)
        ax_calls.loglog(lengths, [r[f"{family}_calls"] for r in times], "o-", color=color, label=family)
    ax_time.set(xlabel="length L (samples)", ylabel="seconds per batch")
    ax_calls.set(xlabel="length L (samples)", ylabel="sequential network calls")
    ax_time.set_title(f"sampling a batch of {batch} ({threads} CPU thread(s))", fontsize=8)
    ax_calls.set_title(f"AR: L calls; diffusion: NFE = {nfe} at any L", fontsize=8)
    ax_time.legend(fontsize=7), ax_calls.legend(fontsize=7)
