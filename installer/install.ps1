<#
.SYNOPSIS
    Installs LocDiff Studio on Windows into a private Python virtual environment, and adds it to
    the Start menu. Run it again to upgrade in place.

.DESCRIPTION
    Needs only Python 3.11 or newer (python.org's installer, the Microsoft Store's Python, or
    any other with its venv module). Never asks for administrator rights: everything it writes
    is in the environment's folder and, through `locdiff-app --install-desktop`, the user's own
    Start menu.

    Steps: find Python (the -Python path, else the `py` launcher's newest 3.11+, else python
    on PATH); create or reuse the environment in -Prefix; pip install LocDiff Studio from the
    package registry (`locdiff`) or from -Wheel; run `Scripts\locdiff-app.exe
    --install-desktop`; print how to start and how to uninstall.

    -Uninstall runs `locdiff-app.exe --uninstall-desktop`, then removes the environment only;
    settings, downloaded models, sessions and caches are kept and listed, unless -Purge is
    given as well.

    PowerShell may refuse to run a downloaded script; run it as
        powershell -ExecutionPolicy Bypass -File install.ps1 [options]
    which changes nothing for other scripts.

.PARAMETER Python
    The python.exe to build the environment with (3.11 or newer).

.PARAMETER Prefix
    The environment's folder. Default: $env:LOCALAPPDATA\LocDiff Studio\venv

.PARAMETER Wheel
    Install this .whl instead of 'locdiff' from the registry (its dependencies still come from
    the registry).

.PARAMETER PipArgs
    Options for every 'pip install' this runs, split at spaces: an index or a constraints file,
    e.g. the CPU-only PyTorch: -PipArgs "--extra-index-url https://download.pytorch.org/whl/cpu"

.PARAMETER NoDesktop
    Do not add the Start-menu shortcut.

.PARAMETER Uninstall
    Remove the Start-menu shortcut, then the environment. User data is kept.

.PARAMETER Purge
    With -Uninstall: remove the settings, models, sessions and caches too.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File install.ps1

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File install.ps1 -Wheel .\locdiff-0.1.0-py3-none-any.whl

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall
#>
[CmdletBinding()]
param(
    [string]$Python = "",
    [string]$Prefix = "",
    [string]$Wheel = "",
    [string]$PipArgs = "",
    [switch]$NoDesktop,
    [switch]$Uninstall,
    [switch]$Purge,
    [switch]$Help
)

Set-StrictMode -Version 3.0
# Cmdlet errors stop the script. Native programs report through $LASTEXITCODE, which is checked
# after each; the functions that run them set "Continue" for their own scope, since Windows
# PowerShell 5.1 turns a native program's redirected stderr into errors that "Stop" would throw.
$ErrorActionPreference = "Stop"

$App = "LocDiff Studio"
$Prog = "install.ps1"
$MinVersion = [Version]"3.11"
$GetPython = "install Python 3.11 or newer from python.org (tick 'Add python.exe to PATH'), " +
    "then run this again, or name it with -Python C:\path\to\python.exe"

function Say([string]$Text) { Write-Host "${Prog}: $Text" }

function Warn([string]$Text) { Write-Warning $Text }

function Fail([string]$Text, [string[]]$Hints = @()) {
    [Console]::Error.WriteLine("${Prog}: error: $Text")
    foreach ($hint in $Hints) { [Console]::Error.WriteLine("  $hint") }
    exit 1
}

if ($Help) {
    Get-Help -Full $PSCommandPath
    exit 0
}
if ($Purge -and -not $Uninstall) { Fail "-Purge only goes with -Uninstall" }
if ($Uninstall -and $Wheel) { Fail "-Wheel does not go with -Uninstall" }
if (-not $env:LOCALAPPDATA) { Fail "LOCALAPPDATA is not set: the per-user folders are found from it" }

if (-not $Prefix) {
    $Prefix = Join-Path $env:LOCALAPPDATA "LocDiff Studio\venv"
    $PrefixOption = ""
} else {
    $Prefix = [IO.Path]::GetFullPath($Prefix).TrimEnd("\", "/")
    $PrefixOption = " -Prefix '" + $Prefix.Replace("'", "''") + "'"  # to copy and paste
}
$Self = if ($PSCommandPath) { $PSCommandPath } else { "install.ps1" }  # empty when piped in
$Scripts = Join-Path $Prefix "Scripts"
$VenvPython = Join-Path $Scripts "python.exe"
$AppExe = Join-Path $Scripts "locdiff-app.exe"
$PipExtra = @($PipArgs -split "\s+" | Where-Object { $_ })

function Test-Venv([string]$Folder) { Test-Path -LiteralPath (Join-Path $Folder "pyvenv.cfg") }

# An environment this script may remove: a venv with LocDiff Studio's launcher in it.
function Test-OurVenv([string]$Folder) {
    (Test-Venv $Folder) -and (Test-Path -LiteralPath (Join-Path $Folder "Scripts\locdiff-app.exe"))
}

# The version of the Python "$Exe" (with launcher arguments such as "-3.12"), or $null when it is
# not a working Python. The Microsoft Store's python.exe alias prints nothing and fails.
function Get-PythonVersion([string]$Exe, [string[]]$Launch = @()) {
    $ErrorActionPreference = "Continue"
    try {
        $out = & $Exe @Launch -c "import sys; print('%d.%d.%d' % sys.version_info[:3])" 2>$null
    } catch {
        return $null
    }
    if ($LASTEXITCODE -ne 0 -or -not $out) { return $null }
    try { return [Version]("$out".Trim()) } catch { return $null }
}

# The full path of the interpreter that "$Exe @Launch" runs.
function Resolve-Python([string]$Exe, [string[]]$Launch = @()) {
    $ErrorActionPreference = "Continue"
    $path = & $Exe @Launch -c "import sys; print(sys.executable)" 2>$null
    if ($LASTEXITCODE -ne 0 -or -not $path) { Fail "$Exe $Launch stopped working while it was asked for its path" }
    return "$path".Trim()
}

function Find-Python {
    if ($Python) {
        $cmd = Get-Command $Python -CommandType Application -ErrorAction SilentlyContinue |
            Select-Object -First 1
        if (-not $cmd) { Fail "-Python ${Python}: no such program" @($GetPython) }
        $found = Get-PythonVersion $cmd.Path
        if (-not $found) { Fail "-Python $Python does not run as a Python interpreter" @($GetPython) }
        if ($found -lt $MinVersion) { Fail "-Python $Python is Python $found; $App needs 3.11 or newer" @($GetPython) }
        return $cmd.Path
    }
    $seen = @()
    $launcher = Get-Command py -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if ($launcher) {
        foreach ($minor in 14, 13, 12, 11) {
            $found = Get-PythonVersion $launcher.Path @("-3.$minor")
            if ($found) { return Resolve-Python $launcher.Path @("-3.$minor") }
        }
        $found = Get-PythonVersion $launcher.Path @("-3")
        if ($found) { $seen += "py -3 ($found)" }
    }
    foreach ($name in "python3", "python") {
        foreach ($cmd in @(Get-Command $name -CommandType Application -All -ErrorAction SilentlyContinue)) {
            $found = Get-PythonVersion $cmd.Path
            if (-not $found) { continue }  # the Store alias, or a broken install
            if ($found -ge $MinVersion) { return Resolve-Python $cmd.Path }
            $seen += "$($cmd.Path) ($found)"
        }
    }
    if ($seen) { Fail "no Python 3.11 or newer found; only: $($seen -join ', ')" @($GetPython) }
    Fail "no Python found (neither the py launcher nor python.exe on PATH)" @($GetPython)
}

function Assert-VenvModule([string]$Exe) {
    $ErrorActionPreference = "Continue"
    & $Exe -c "import venv, ensurepip" 2>$null
    if ($LASTEXITCODE -ne 0) {
        Fail "$Exe has no working venv module (venv and ensurepip), which this script needs" @(
            "reinstall Python from python.org, which includes it")
    }
}

# pip inside the environment, with -PipArgs after the arguments given; its exit status (its
# messages go to the console, not into the function's result).
function Invoke-Pip([string[]]$Arguments) {
    $ErrorActionPreference = "Continue"
    & $VenvPython -m pip @Arguments @PipExtra | Out-Host
    return $LASTEXITCODE
}

function Exit-PipFailure([int]$Status) {
    Fail "pip could not install $App (exit status $Status); its messages are above" @(
        "'No matching distribution found for locdiff': this index does not have it; use -Wheel",
        "no network or a proxy: set HTTPS_PROXY, or point -PipArgs at a reachable index",
        "no disk space: $App with its PyTorch and Qt needs a few GB",
        "for an NVIDIA GPU: PyPI's PyTorch for Windows is the CPU build; a CUDA build comes",
        "  from PyTorch's own index (pytorch.org names the current one), e.g.",
        "  -PipArgs `"--extra-index-url https://download.pytorch.org/whl/cu128`"",
        "the environment at $Prefix is left as it was for another try")
}

# Deletes the environment; a running LocDiff Studio holds its files open on Windows.
function Remove-Environment {
    try {
        Remove-Item -LiteralPath $Prefix -Recurse -Force -ErrorAction Stop
    } catch {
        Fail "could not remove ${Prefix}: $($_.Exception.Message)" @(
            "close LocDiff Studio (and any program started from that folder), then run this again")
    }
}

function New-Venv([string]$Py) {
    if (Test-Venv $Prefix) {
        $has = Get-PythonVersion $VenvPython
        if ($has) {
            $wanted = Get-PythonVersion $Py
            # an explicit -Python of another minor version remakes it; otherwise it is kept
            if (-not $Python -or ($has.Major -eq $wanted.Major -and $has.Minor -eq $wanted.Minor)) {
                Say "upgrading the environment at $Prefix (Python $has)"
                return
            }
            Say "the environment at $Prefix has Python $has; remaking it with $Py"
        } else {
            Say "the environment at $Prefix does not run any more; remaking it"
        }
        if (-not (Test-OurVenv $Prefix)) {
            Fail "$Prefix is a virtual environment without $App in it" @(
                "choose another -Prefix, or remove it yourself")
        }
        Remove-Environment
    } elseif ((Test-Path -LiteralPath $Prefix) -and (Get-ChildItem -LiteralPath $Prefix -Force | Select-Object -First 1)) {
        Fail "$Prefix exists and is not a virtual environment; choose another -Prefix"
    }
    Assert-VenvModule $Py
    Say "creating the environment at $Prefix with $Py"
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $Prefix) -ErrorAction Stop |
        Out-Null
    $ErrorActionPreference = "Continue"
    & $Py -m venv $Prefix | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "'$Py -m venv $Prefix' failed (its message is above)" @("check that the folder is writable") }
}

function Install-App {
    Say "updating pip"
    if ((Invoke-Pip @("install", "--quiet", "--upgrade", "pip")) -ne 0) { Warn "pip could not update itself; going on" }
    if ($Wheel) {
        Say "installing $Wheel and its dependencies"
        $status = Invoke-Pip @("install", "--upgrade", $Wheel)
        if ($status -ne 0) { Exit-PipFailure $status }
        # the same version again: pip keeps the installed copy unless told to replace it
        $status = Invoke-Pip @("install", "--quiet", "--force-reinstall", "--no-deps", $Wheel)
        if ($status -ne 0) { Exit-PipFailure $status }
    } else {
        Say "installing locdiff and its dependencies from the package registry"
        $status = Invoke-Pip @("install", "--upgrade", "locdiff")
        if ($status -ne 0) { Exit-PipFailure $status }
    }
    if (-not (Test-Path -LiteralPath $AppExe)) { Fail "pip finished but $AppExe is missing; the package is damaged" }
}

function Install-Desktop {
    $ErrorActionPreference = "Continue"
    $helpText = (& $AppExe --help 2>$null) -join "`n"
    if ($helpText -notmatch "--install-desktop") {
        Fail "this $App has no --install-desktop option, so no Start-menu shortcut was made" @(
            "it is installed: start it with $AppExe",
            "(or install a newer version; -NoDesktop skips this step)")
    }
    Say "adding $App to the Start menu"
    & $AppExe --install-desktop | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "the Start-menu shortcut could not be made (see above)" @("$App is installed: start it with $AppExe") }
}

function Get-InstalledVersion {
    $ErrorActionPreference = "Continue"
    $out = & $VenvPython -c "from locdiff_core import __version__; print(__version__)" 2>$null
    if ($LASTEXITCODE -ne 0 -or -not $out) { return "(unknown version)" }
    return "$out".Trim()
}

function Invoke-Install {
    if ($Wheel) {
        if (-not $Wheel.EndsWith(".whl")) { Fail "-Wheel ${Wheel}: not a .whl file" }
        if (-not (Test-Path -LiteralPath $Wheel -PathType Leaf)) { Fail "-Wheel ${Wheel}: no such file" }
        $script:Wheel = (Resolve-Path -LiteralPath $Wheel).Path
    }
    $py = Find-Python
    New-Venv $py
    Install-App
    if (-not $NoDesktop) { Install-Desktop }
    $version = Get-InstalledVersion
    Write-Host ""
    Say "$App $version is installed in $Prefix"
    Write-Host "Start it:"
    if (-not $NoDesktop) { Write-Host "  from the Start menu: $App" }
    Write-Host "  or: & `"$AppExe`" [photos or folders]"
    Write-Host "  the command line (training, selfcheck): & `"$(Join-Path $Scripts 'locdiff.exe')`" --help"
    Write-Host "Upgrade: powershell -ExecutionPolicy Bypass -File `"$Self`"$PrefixOption  (again)"
    Write-Host "Uninstall: powershell -ExecutionPolicy Bypass -File `"$Self`"$PrefixOption -Uninstall  (keeps settings, models, sessions)"
}

# "what<TAB>folder" for each per-user folder of the app's data, as the installed app finds them
# (its LOCDIFF_*_DIR overrides included).
$UserFolders = @"
from app.model.settings import cache_dir, config_dir, data_dir
from locdiff_core.encoder_weights import default_cache_dir
from locdiff_core.photo.journal import state_dir
for what, path in (('models, sessions, write journal', data_dir()), ('settings', config_dir()),
                   ('map tiles', cache_dir()), ('image-encoder weights', default_cache_dir()),
                   ('undo journal', state_dir())):
    print(what, path, sep=chr(9))
"@

function Invoke-Uninstall {
    $ErrorActionPreference = "Continue"
    if (-not (Test-Venv $Prefix)) {
        if (Test-Path -LiteralPath $Prefix) { Fail "$Prefix is not a virtual environment; nothing removed" }
        Say "nothing is installed at $Prefix"
        return
    }
    if (-not (Test-OurVenv $Prefix)) {
        Fail "$Prefix is a virtual environment without $App in it" @("nothing removed (is -Prefix right?)")
    }
    $folders = @(& $VenvPython -c $UserFolders 2>$null)
    if ($LASTEXITCODE -ne 0) { $folders = @() }
    $helpText = (& $AppExe --help 2>$null) -join "`n"
    if ($helpText -match "--uninstall-desktop") {
        Say "removing the Start-menu shortcut"
        & $AppExe --uninstall-desktop | Out-Host
        if ($LASTEXITCODE -ne 0) {
            Fail "the Start-menu shortcut could not be removed (see above)" @(
                "the environment is left in place so this can be run again")
        }
    } else {
        Warn "this $App has no --uninstall-desktop; no shortcut removed"
    }
    Say "removing the environment $Prefix"
    Remove-Environment
    $parent = Split-Path -Parent $Prefix
    if ((Split-Path -Leaf $parent) -eq "LocDiff Studio" -and -not (Get-ChildItem -LiteralPath $parent -Force)) {
        Remove-Item -LiteralPath $parent -ErrorAction SilentlyContinue  # when the environment was all it held
    }
    if (-not $folders) {
        Warn "the installation could not tell where its data is; only the environment was removed"
        return
    }
    $kept = @()
    $done = @{}
    foreach ($line in $folders) {
        $what, $folder = "$line" -split "`t", 2
        if (-not $folder -or $done.ContainsKey($folder) -or -not (Test-Path -LiteralPath $folder)) { continue }
        $done[$folder] = $true
        if ($Purge) {
            if ($folder -eq $env:USERPROFILE -or $folder.Length -le 3) { Warn "not removing $folder"; continue }
            Remove-Item -LiteralPath $folder -Recurse -Force -ErrorAction Stop
            Write-Host "  removed   $folder"
        } else {
            $kept += "  kept      $folder ($what)"
        }
    }
    if ($kept) {
        Say "your data is kept:"
        $kept | ForEach-Object { Write-Host $_ }
        Write-Host "Delete those folders to remove it as well (-Uninstall -Purge does that)."
    }
    Say "$App is uninstalled"
}

if ($Uninstall) { Invoke-Uninstall } else { Invoke-Install }
exit 0
