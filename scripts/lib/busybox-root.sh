# Sourced by build-test-image.sh and build-openvz-template.sh: the part of a busybox test root
# they share. Needs $root (the root being built) and $busybox_bin (a static busybox).

# busybox and its applets (as symlinks), into the current directory ($root)
install_busybox() {
    cp "$busybox_bin" bin/busybox
    local applet
    for applet in $("$busybox_bin" --list-full); do
        [[ -e $applet || -L $applet ]] || ln -s /bin/busybox "$applet"
    done
}

# a host binary into $root/DEST with the shared libraries it loads
copy_with_libs() {
    local bin=$1 dest=$2 lib
    rm -f "$root/$dest"
    cp "$bin" "$root/$dest"
    for lib in $(ldd "$bin" | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}'); do
        mkdir -p "$root/$(dirname "$lib")"
        [[ -e $root/$lib ]] || cp -L "$lib" "$root/$lib"
    done
}

# iproute2's ip and tc (busybox's cannot set tbf or netem)
install_iproute2() {
    copy_with_libs "$(command -v ip)" sbin/ip
    copy_with_libs "$(command -v tc)" sbin/tc
}

# root and nobody, with no password (login is by the node's own means, never a password)
install_accounts() {
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > etc/passwd
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > etc/group
    printf '%s\n' 'root:*:19000:0:99999:7:::' 'nobody:*:19000:0:99999:7:::' > etc/shadow
    chmod 0640 etc/shadow
}
